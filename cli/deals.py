"""Commands over agents/: price, history, route and scan."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.common import console, fail, settings
from models.config import Settings
from models.types import money

commands = typer.Typer()


@commands.command()
def price(
    description: Annotated[str, typer.Argument(help="What the product is; '-' reads standard input.")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    evidence: Annotated[int, typer.Option(help="How many similar items to show.")] = 5,
    batch: Annotated[Path | None, typer.Option(help="Price every line of this file (a description each); prints JSON lines.")] = None,
    ray: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS", help="With --batch: price on this Ray cluster.")] = None,
) -> None:
    """Say what a product is worth: each agent's estimate, the ensemble and its interval."""
    from rich.markup import escape

    from agents.pricing import load_pricers, price_report
    from agents.pricing.text import DescriptionError

    if batch is not None:
        price_batch(batch, ray)
        return
    if ray:
        fail("--ray prices a --batch FILE")
    if not description:
        fail("say what to price: a description, '-' for standard input, or --batch FILE")
    text = sys.stdin.read() if description == "-" else description
    found, missing = load_pricers(settings())
    say_missing(missing)
    try:
        report = price_report(text, found)
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

def say_missing(missing: dict[str, str]) -> None:
    """Why each agent that did not load is left out (on stderr): an estimate made without the
    forest or the vector store should not pass for one made with them."""
    for name, why in missing.items():
        console.print(f"the {name} agent is not used: {why}", highlight=False, markup=False, style="dim")


def price_batch(path: Path, ray_address: str | None) -> None:
    """One JSON line per non-empty line of `path`: {"description", "estimate"} or {"description", "error"}."""
    from agents.pricing import load_pricers, main_pricer
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
        found, missing = load_pricers(settings())
        say_missing(missing)
        try:
            pricer = main_pricer(found)
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


@commands.command()
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

@commands.command()
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


@commands.command()
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
