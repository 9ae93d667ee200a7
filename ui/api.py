"""The app's API endpoints that are also its MCP tools (ui/mcp_server.py): their docstrings and
typed arguments are what an MCP client reads. Bad input is one clear sentence (gr.Error)."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from agents.schedule import ScanBusy
from agents.wiring import Services
from ui.inputs import number_input, text_input


class ApiTools:
    def __init__(self, services: Services):
        self.services = services

    def estimate_price(self, description: str) -> dict[str, Any]:
        """Estimate what a product is worth: the value, likely range, each agent and similar products.

        Args:
            description: the product's title and details, e.g. "Sony WH-1000XM5 wireless headphones"
        """
        description = text_input(description, "product description")
        try:
            return self.services.pricer.estimate(description).model_dump()
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def list_opportunities(self, max_price: float | None = None, limit: int = 5) -> str:
        """List the best deals found so far, largest saving first.

        Args:
            max_price: only deals priced at most this many dollars (none: any price)
            limit: how many deals, 1 to 50
        """
        if max_price is not None and number_input(max_price, -math.inf, math.inf) is None:
            raise gr.Error("max_price is not a price filter I can use: give a dollar amount, like 200.")
        count = number_input(limit, 1, 50)
        if count is None or count != int(count):
            raise gr.Error("limit must be a whole number from 1 to 50.")
        try:
            return self.services.toolbox().list_opportunities(max_price, int(count)).text
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def explain_estimate(self, query: str) -> str:
        """Explain the evidence behind a found deal's estimate: similar products, each agent, why it qualified.

        Args:
            query: words from the deal's title, e.g. "Sony headphones"
        """
        query = text_input(query, "query")
        try:
            return self.services.toolbox().explain_estimate(query).text
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def scan_deals(self) -> str:
        """Scan the configured deal feeds now, price new deals, notify about the best."""
        try:
            return self.services.pipeline.scan().summary()
        except ScanBusy:
            return "A scan is already running."
        except ValueError as err:
            raise gr.Error(str(err)) from None
