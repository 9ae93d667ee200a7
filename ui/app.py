"""The Gradio app: chat with the planning agent, the deals dashboard, and a pricing tab.

No business logic here: everything goes through agents.wiring.Services.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import deque
from typing import Any

import gradio as gr

from agents.chat.planner import PlanningAgent, Reply, ToolStep
from agents.schedule import schedule
from agents.wiring import Services
from models.types import money
from ui.api import ApiTools
from ui.chat_view import history_messages, shown_text, step_message
from ui.deals_view import DEAL_COLUMNS, DEAL_TYPES, DEAL_WIDTHS, deal_rows, evidence_markdown, price_table
from ui.inputs import ChatPanel, DealTable, number_input, text_input
from ui.panels import (
    DigestControl,
    evidence_extras,
    history_chart_message,
    history_figure,
    user_of,
    watchlist_tab,
)

log = logging.getLogger(__name__)
EXAMPLES = [
    "What is this worth: Sony WH-1000XM5 wireless noise cancelling headphones, black",
    "Scan for deals now",
    "Show me the best deals under $200",
    "Explain that estimate",
]
MAX_SCAN_EVERY_MINUTES = 7 * 24 * 60
MAX_THRESHOLD = 1_000_000.0
# Chat turns run at once. Most are instant (fixed small talk, the deals list, a price from the
# loaded models); the slow parts keep their own slots: one scan (agents/schedule.py), one local
# model reply (agents/chat/small_talk.py), llama.cpp's lock. Two at a time made every session
# wait behind two scans or two hosted-model turns.
CHAT_AT_ONCE = 16
# Gradio summarises every event it keeps (up to 10,000) with pandas after each one, for a
# monitoring page this app does not serve: 3-7 ms a message, more than a greeting's whole turn.
GRADIO_ANALYTICS_EVERY = "1000"

ACTIVITY_LOGGERS = ("agents", "dealscout")


class LogBuffer(logging.Handler):
    """The recent agent activity, for the dashboard's log panel."""

    def __init__(self, keep: int = 200):
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(reversed(self.lines))


class DealScoutApp:
    def __init__(self, services: Services, *, scan_every_s: float | None = None, activity_every_s: float = 10.0):
        self.services = services
        self.activity_every_s = activity_every_s  # the dashboard's refresh, for a scan nobody clicked
        self.logs = LogBuffer()
        # Every agent's lines: modules log under their own name (agents.*), the pipeline's feed,
        # scanner and messaging lines under dealscout.*.
        for name in ACTIVITY_LOGGERS:
            source = logging.getLogger(name)
            source.addHandler(self.logs)
            if source.getEffectiveLevel() > logging.INFO:  # else the activity panel stays empty
                source.setLevel(logging.INFO)
        self.scan_every_s = scan_every_s or services.settings.scan_every_minutes * 60
        self.scheduler = None
        self.digest = DigestControl(services)
        self.api = ApiTools(services)

    # --- handlers ----------------------------------------------------------------------------

    def chat(self, message: str, history: list[dict[str, Any]], planner: PlanningAgent | None, user: str = ""):
        try:
            planner = planner or self.services.planner(user)
        except ValueError as err:  # e.g. no pricing agent built yet: say so in the chat
            answer = f"I am not ready yet: {err}"
            self._record_failed_turn(message, answer)
            yield [gr.ChatMessage(role="assistant", content=shown_text(answer))], None
            return
        shown: list[gr.ChatMessage] = []
        for event in planner.run(message, history_messages(history)):
            if isinstance(event, ToolStep):
                if shown and shown[-1].metadata and event.status != "pending":
                    shown[-1] = step_message(event)
                else:
                    shown.append(step_message(event))
            elif isinstance(event, Reply):
                shown.append(gr.ChatMessage(role="assistant", content=shown_text(event.text)))
                shown += history_chart_message(self.services, planner.toolbox)
            yield shown, planner

    def _record_failed_turn(self, message: str, answer: str) -> None:
        """Keep a turn that failed before a planner existed, as the planner keeps its own turns
        (`launch.py history` shows it); like the planner's, a failure to record only logs."""
        try:
            memory = self.services.memory
            turn = memory.start_turn(uuid.uuid4().hex[:12], message)
            memory.finish_turn(turn, answer, "failed")
        except Exception:
            log.exception("could not record the chat turn")

    def deal_table(self) -> list[list[Any]]:
        """The opportunities found so far, newest first, as the Deals tab shows them."""
        return deal_rows(self.services)

    def dashboard(self) -> tuple[list[list[Any]], str]:
        return self.deal_table(), self.logs.text()

    def set_schedule(self, minutes: float, enabled: bool, *, save: bool = True) -> str:
        every = number_input(minutes, 1, MAX_SCAN_EVERY_MINUTES)
        if enabled and every is None:  # checked before the running schedule is touched
            return f"Choose an interval from 1 to {MAX_SCAN_EVERY_MINUTES:,} minutes."
        if save:
            self.services.settings_store.save(schedule_on=bool(enabled),
                                              **({"scan_every_minutes": every} if every is not None else {}))
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if not enabled:
            return "Scheduled scans are off."
        minutes = every
        try:
            scan = self.services.pipeline.scan
        except ValueError as err:  # e.g. no pricing agent yet: the app still starts, and says why
            log.warning("scheduled scans are off: %s", err)
            return f"Scheduled scans are off: {err}"
        self.scan_every_s = minutes * 60
        self.scheduler = schedule(scan, self.scan_every_s)
        return f"Scanning every {minutes:g} minutes (server-side, also with no browser open)."

    def apply_settings(self, threshold: float, feeds_text: str, notify_best: float | None = None) -> str:
        """Feeds, threshold and alerts per scan for the whole app: every user's scans and the schedule."""
        if number_input(threshold, 0, MAX_THRESHOLD) is None:
            return f"The threshold must be a dollar amount from $0 to {money(MAX_THRESHOLD)}."
        if not isinstance(feeds_text, str):
            return "The feeds must be text, one URL a line."
        feeds = [line.strip() for line in feeds_text.splitlines() if line.strip()]
        bad = [f for f in feeds if not f.startswith(("http://", "https://"))]
        if bad:
            return f"Only http(s) feed URLs can be set here: {', '.join(bad[:3])}"
        if notify_best is not None and (number_input(notify_best, 1, 2**31) is None
                                        or notify_best != int(notify_best)):
            return "Alerts per scan must be a whole number, 1 or more."
        pipeline = self.services.pipeline
        pipeline.threshold, pipeline.feeds = float(threshold), feeds or pipeline.feeds
        if notify_best is not None:
            pipeline.notify_best = int(notify_best)
        self.services.settings_store.save(threshold=pipeline.threshold, feeds=pipeline.feeds,
                                          notify_best=pipeline.notify_best)
        return f"Threshold ${threshold:,.0f}; {pipeline.notify_best} alerts per scan; {len(pipeline.feeds)} feeds. Saved."

    def select_deal(self, index: Any, rows: Any) -> tuple[int | None, str]:
        """The deal a click on the table's row `index` selects, and its evidence."""
        row = index[0] if isinstance(index, list | tuple) and index else index
        shown = len(rows) if hasattr(rows, "iloc") else 0
        if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < shown:
            return None, "Select a deal to see its evidence."
        opportunity_id = number_input(rows.iloc[row, 0], 1, 2**63 - 1)
        if opportunity_id is None or opportunity_id != int(opportunity_id):
            return None, "Select a deal to see its evidence."
        found = int(opportunity_id)
        return found, "\n\n".join(filter(None, [evidence_markdown(self.services, found),
                                                 evidence_extras(self.services, found)]))

    def resend(self, opportunity_id: float | None) -> str:
        if opportunity_id is None:
            return "Select a deal first."
        if number_input(opportunity_id, 1, 2**63 - 1) is None or opportunity_id != int(opportunity_id):
            return "That is not a deal's id: select a deal in the table."
        found = self.services.memory.evidence(int(opportunity_id))
        if found is None:
            return "That deal is gone."
        alert = self.services.messenger.compose(found.opportunity)
        sent = self.services.memory.notification(alert.key)
        attempt = (sent.attempts if sent else 0) + 1
        note = self.services.messenger.message(f"{alert.key}#resend-{attempt}", alert.title, alert.body)
        return f"Re-sent via {note.channel}." if note and note.status == "delivered" else "Queued; delivery will be retried."

    def deal_map(self):
        from agents.pricing import catalogue_map

        return catalogue_map(self.services.settings, limit=1500)

    # --- layout ------------------------------------------------------------------------------

    def build(self, mcp: bool = False) -> gr.Blocks:
        """The app. With `mcp` its API lists only the MCP tools (ui/mcp_server.py); the chat, the
        deals table and the Price tab stay callable, undocumented, so they are no MCP tools."""
        s = self.services.settings_store.load()
        ui_api = "undocumented" if mcp else "public"
        with gr.Blocks(title="DealScout", analytics_enabled=False) as demo:
            gr.Markdown("# DealScout\nDeals worth your money, and what things are really worth.")
            with gr.Tab("Chat"):
                planner = gr.State(None)
                chatbot = ChatPanel(height=520, label="DealScout", examples=[{"text": e} for e in EXAMPLES])
                box = gr.Textbox(placeholder="Ask: what is this worth: …, scan for deals now, best deals under $200",
                                 show_label=False, submit_btn=True)

                def respond(message, shown, agent, request: gr.Request):
                    message = text_input(message, "chat message")
                    shown = [*shown, gr.ChatMessage(role="user", content=shown_text(message))]
                    for new, session_agent in self.chat(message, shown[:-1], agent, user_of(request)):
                        yield "", [*shown, *new], session_agent

                box.submit(respond, [box, chatbot, planner], [box, chatbot, planner], api_name="chat",
                           concurrency_id="agents", concurrency_limit=CHAT_AT_ONCE, api_visibility=ui_api)
                def use_example(evt: gr.SelectData) -> str:
                    return text_input(evt.value.get("text") if isinstance(evt.value, dict) else None, "example")

                chatbot.example_select(use_example, None, box, api_visibility="private")
            with gr.Tab("Deals") as deals_tab:
                with gr.Row():
                    scan_now = gr.Button("Scan now", variant="primary")
                    status = gr.Textbox(label="Status", interactive=False, scale=3)
                table = DealTable(headers=DEAL_COLUMNS, datatype=DEAL_TYPES, column_widths=DEAL_WIDTHS,
                                     interactive=False, wrap=True, label="Opportunities")
                selected = gr.Number(visible=False)
                with gr.Row():
                    evidence = gr.Markdown("Select a deal to see its evidence.")
                    resend = gr.Button("Re-send alert", scale=0)
                history_plot = gr.Plot(label="Price history", visible=False)
                with gr.Accordion("Schedule and settings (the whole app's: every user and the schedule)", open=False):
                    with gr.Row():
                        every = gr.Number(value=s.scan_every_minutes, label="Scan every (minutes)")
                        enabled = gr.Checkbox(value=self.scheduler is not None, label="Scheduled scans on")
                        threshold = gr.Number(value=s.threshold, label="Threshold ($ below worth)")
                        notify_best = gr.Number(value=s.notify_best, label="Alerts per scan", precision=0)
                    feeds = gr.Textbox(value="\n".join(s.feeds), lines=4, label="Feeds (one URL a line)")
                    apply = gr.Button("Apply")
                    self.digest.controls(status)
                activity = gr.Textbox(label="Agent activity", lines=8, max_lines=8, interactive=False)
                timer = gr.Timer(self.activity_every_s)
                timer.tick(self.dashboard, None, [table, activity], api_visibility="private")
                deals_tab.select(self.dashboard, None, [table, activity], api_visibility="private")
                scan_now.click(self.api.scan_deals, None, status, api_name="scan_deals", concurrency_id="scan",
                               concurrency_limit=1).then(self.deal_table, None, table, api_name="deals",
                                                          api_visibility=ui_api).then(
                    self.logs.text, None, activity, api_visibility="private")

                def pick(evt: gr.SelectData, rows):
                    opportunity_id, text = self.select_deal(evt.index, rows)
                    chart = history_figure(self.services, opportunity_id) if opportunity_id is not None else None
                    return opportunity_id, text, gr.Plot(value=chart, visible=chart is not None)

                table.select(pick, table, [selected, evidence, history_plot], api_visibility="private")
                resend.click(self.resend, selected, status, api_visibility="private")
                enabled.change(self.set_schedule, [every, enabled], status, api_visibility="private")
                apply.click(self.apply_settings, [threshold, feeds, notify_best], status, api_visibility="private")
                with gr.Accordion("Map of known products", open=False):
                    plot = gr.Plot()
                    gr.Button("Draw the map").click(self.deal_map, None, plot, api_visibility="private")
            watchlist_tab(self.services)
            with gr.Tab("Price"):
                description = gr.Textbox(lines=4, label="Product description")
                go = gr.Button("Estimate", variant="primary")
                estimates = gr.Dataframe(headers=["agent", "estimate $", "likely range $"], interactive=False)
                why = gr.Markdown()
                go.click(lambda d: price_table(self.services, d), description, [estimates, why],
                         api_name="price", concurrency_id="pricing", concurrency_limit=2, api_visibility=ui_api)
            for tool in (self.api.estimate_price, self.api.list_opportunities, self.api.explain_estimate):
                gr.api(tool, api_name=tool.__name__)
            demo.load(self.dashboard, None, [table, activity], api_visibility="private")
        os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", GRADIO_ANALYTICS_EVERY)  # read by queue()
        demo.queue(default_concurrency_limit=2, max_size=64)
        return demo
