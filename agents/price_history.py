"""Price history: offers of the same product across scans and feeds, grouped.

Each deal seen becomes an offer of a product (a refurbished or open-box offer of its own one). Two
titles name the same product when they share a model number ("WH1000XM5", "WH-1000XM5") and no
size differs, when their normalised names are equal, or when MiniLM puts them very close *and*
they name the same model numbers and sizes ("WH-1000XM5" is not "WH-1000XM4", 128GB is not
256GB; measured on tests/fixtures/offer_groups.json). Grouping sweeps every deal without an offer, so a scan cut
off by a crash is grouped by the next one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel

from agents.deal_text import product_name
from agents.memory import Memory, deal_key
from models.types import Deal, TextEmbedder, money

MIGRATIONS = [("price history", (
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, normalised TEXT NOT NULL, "
    "vector BLOB)",
    "CREATE INDEX products_by_name ON products(normalised)",
    "CREATE TABLE offers (deal_key TEXT PRIMARY KEY REFERENCES deals(key), "
    "product_id INTEGER NOT NULL REFERENCES products(id), price REAL NOT NULL, retailer TEXT NOT NULL, "
    "feed TEXT NOT NULL, seen_at TEXT NOT NULL)",
    "CREATE INDEX offers_by_product ON offers(product_id)"))]
SAME_PRODUCT = 0.9  # MiniLM cosine of two differently worded names of one product (same model numbers)
SUBSET_FLOOR = 0.7  # one name's words all in the other's: close enough in meaning too
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\"|”|''|-?\s?inch(?:es)?\b|-?\s?in\.?(?=\s|$))", re.I)
_UNIT = re.compile(r"(\d)\s*-?\s*(gb|tb|mb|quart|qt|w|v|mah|mm|oz|lbs?|ft)\b", re.I)
_FILLER = re.compile(r"\b(?:new|brand\s+new|the|with|w/|and|for|free\s+shipping|shipping|deal|sale|"
                     r"class|\(.*?\))\b", re.I)
# A refurbished or open-box offer is its own product: its price says nothing of a new one's.
_SECOND_HAND = re.compile(r"\b(?:(?:certified\s+)?refurbished|refurb|renewed|open[\s-]?box|pre-?owned|used)\b", re.I)
SECOND_HAND = "refurbished"


def second_hand(title: str) -> bool:
    """A refurbished, renewed, open-box or used offer."""
    return bool(_SECOND_HAND.search(title))
# A model number: letters and digits together, five or more ("wh1000xm5", "dck240c2"), not an
# amount with its unit ("128gb", "1000mah").
_MODEL_NUMBER = re.compile(r"(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{5,}")
_AMOUNT_WITH_UNIT = re.compile(r"\d+(?:\.\d+)?[a-z]{1,4}")
_WORD = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")


class PricePoint(BaseModel):
    seen_at: datetime
    price: float
    retailer: str
    feed: str
    deal_key: str


class PriceHistory(BaseModel):
    product: str
    points: list[PricePoint]  # oldest first, this offer included

    def summary(self, price: float, now: datetime | None = None) -> str:
        """ "First time seen", "Lowest price seen in 12 days" or "Seen for less: $X on DATE"."""
        if len(self.points) <= 1:
            return "First time seen."
        others = [p for p in self.points if p.price < price]
        if not others:
            days = max(1, math.ceil(((now or datetime.now(UTC)) - self.points[0].seen_at).total_seconds() / 86400))
            return f"Lowest price seen in {days} day{'s' if days != 1 else ''} ({len(self.points)} offers)."
        cheapest = min(others, key=lambda p: p.price)
        return f"Seen for less: {money(cheapest.price)} on {cheapest.seen_at:%Y-%m-%d}" + (
            f" at {cheapest.retailer}." if cheapest.retailer else ".")


def normalise(title: str) -> str:
    """The product's name as compared: the deal's terms, sizes' units, filler and case gone."""
    name = _SECOND_HAND.sub(f" {SECOND_HAND} ", _SIZE.sub(r"\1", product_name(title).lower()))
    name = _UNIT.sub(lambda m: m.group(1) + m.group(2).replace("quart", "qt"), name)
    name = _FILLER.sub(" ", name)
    return " ".join(w.replace("-", "") for w in _WORD.findall(name))


def model_tokens(normalised: str) -> frozenset[str]:
    """The words with a digit (model numbers, sizes, capacities), without hyphens."""
    return frozenset(w for w in normalised.split() if any(c.isdigit() for c in w))


def same_models(a: frozenset[str], b: frozenset[str]) -> bool:
    """One name may leave a number out ("Sony WH-1000XM5" vs "... 30-hour"), never name another."""
    return a <= b or b <= a


def _conflicting(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether the names give different values of one kind: 55 and 65 (inches), 128gb and 256gb."""
    def by_kind(tokens: frozenset[str]) -> dict[str, set[str]]:
        kinds: dict[str, set[str]] = {}
        for token in tokens:
            kinds.setdefault(re.sub(r"\d+(?:\.\d+)?", "#", token), set()).add(token)
        return kinds

    ours, theirs = by_kind(a), by_kind(b)
    return any(ours[kind] != theirs[kind] for kind in ours.keys() & theirs.keys())


def model_numbers(normalised: str) -> frozenset[str]:
    return frozenset(w for w in model_tokens(normalised)
                     if _MODEL_NUMBER.fullmatch(w) and not _AMOUNT_WITH_UNIT.fullmatch(w))


def same_product(a: str, b: str, similarity: float | None) -> bool:
    """Whether two normalised names offer one product: both new or both second-hand, they name no
    different model numbers, and they share a model number ("wh1000xm5"), or one's words are all
    in the other's ("dewalt 20v max cordless drill kit" in "... drill driver kit"), or, worded
    differently, MiniLM puts them very close (`similarity`; None: no embedder)."""
    if (SECOND_HAND in a.split()) != (SECOND_HAND in b.split()):
        return False
    if model_numbers(a) & model_numbers(b):  # one may name a size or voltage the other leaves out
        return not _conflicting(model_tokens(a), model_tokens(b))
    if not same_models(model_tokens(a), model_tokens(b)):
        return False
    short, long = sorted((set(a.split()), set(b.split())), key=len)
    if len(short) >= 2 and short <= long:
        return similarity is None or similarity >= SUBSET_FLOOR
    return similarity is not None and similarity >= SAME_PRODUCT and model_tokens(a) == model_tokens(b)


class OfferGroups:
    def __init__(self, memory: Memory, embedder: TextEmbedder | None = None):
        self.memory, self.embedder = memory, embedder
        memory.apply_migrations(MIGRATIONS)

    def record(self) -> int:
        """Group every deal that is not yet an offer; returns how many were grouped."""
        rows = self.memory.rows("SELECT d.deal FROM deals d LEFT JOIN offers o ON o.deal_key = d.key "
                                "WHERE o.deal_key IS NULL ORDER BY d.rowid")
        deals = [Deal.model_validate_json(r["deal"]) for r in rows]
        if not deals:
            return 0
        names = [normalise(d.title) for d in deals]
        vectors = (np.asarray(self.embedder.embed(names), dtype=np.float32) if self.embedder is not None
                   else [None] * len(deals))
        products = self.memory.rows("SELECT id, normalised, vector FROM products")
        known = [(r["id"], r["normalised"], None if r["vector"] is None else np.frombuffer(r["vector"], np.float32))
                 for r in products]
        with self.memory.transaction() as db:
            for deal, name, vector in zip(deals, names, vectors, strict=True):
                product = self._match(known, name, vector)
                if product is None:
                    blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
                    product = db.execute("INSERT INTO products (name, normalised, vector) VALUES (?, ?, ?)",
                                         (product_name(deal.title), name, blob)).lastrowid
                    known.append((product, name, vector))
                db.execute("INSERT OR IGNORE INTO offers VALUES (?, ?, ?, ?, ?, ?)",
                           (deal_key(deal), product, deal.price, deal.retailer, deal.feed,
                            deal.seen_at.isoformat()))
        return len(deals)

    @staticmethod
    def _match(known: Sequence[tuple[int, str, np.ndarray | None]], name: str, vector) -> int | None:
        best, best_score = None, -1.0
        for product, other, other_vector in known:
            if other == name:
                return product
            score = 1.0 if vector is None or other_vector is None else float(np.dot(vector, other_vector))
            if score > best_score and same_product(name, other, None if vector is None else score):
                best, best_score = product, score
        return best

    def history(self, key: str) -> PriceHistory | None:
        """The price history of the product a deal (by its key) is an offer of."""
        found = self.memory.rows("SELECT p.id, p.name FROM offers o JOIN products p ON p.id = o.product_id "
                                 "WHERE o.deal_key = ?", (key,))
        if not found:
            return None
        rows = self.memory.rows("SELECT * FROM offers WHERE product_id = ? ORDER BY seen_at, rowid",
                                (found[0]["id"],))
        return PriceHistory(product=found[0]["name"], points=[
            PricePoint(seen_at=r["seen_at"], price=r["price"], retailer=r["retailer"], feed=r["feed"],
                       deal_key=r["deal_key"]) for r in rows])

    def groups(self) -> list[list[str]]:
        """Every product's deal keys (for measuring the grouping)."""
        by_product: dict[int, list[str]] = {}
        for row in self.memory.rows("SELECT product_id, deal_key FROM offers ORDER BY rowid"):
            by_product.setdefault(row["product_id"], []).append(row["deal_key"])
        return list(by_product.values())
