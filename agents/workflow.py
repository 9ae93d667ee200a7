"""The deal workflow: scan -> price new deals -> opportunities -> notify the best -> record.

Each step is one transaction in memory, so a crash anywhere leaves work the next run finishes,
and nothing is notified twice (see agents/memory/).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from agents.memory import Memory, StoredOpportunity
from agents.messaging import DeliveryReport, MessagingAgent
from agents.price_history import OfferGroups
from agents.scanner import Scanner, ScanResult
from agents.schedule import scan_lock
from agents.watchlist import Watchlist
from models.types import Deal, Estimate, Opportunity, Pricer, money, neighbour_estimate

log = logging.getLogger(__name__)


EVIDENCE_NEIGHBOURS = 10  # the most similar known products an alert must be backed by


def why_not(deal: Deal, estimate: Estimate, threshold: float) -> str:
    """Why a deal is not worth telling about ("" when it is): its estimate must rest on real
    evidence, beat the price by the threshold and, with an interval, have the price below its low
    end; and the most similar known products themselves (by similarity alone, no price prior) must
    cost the threshold more than the price. That last check halved the full-price offers flagged on
    the reference validation part (9.7% -> 4.9%; half-price offers 39% -> 29%, precision in a
    1-in-10 stream 31% -> 40%): an $8.49 air-conditioner cover is not worth $132 because
    expensive products sit further down its list of neighbours.

    The seller's own regular price is no evidence of worth (sellers inflate it), but it bounds one:
    when even it is not the threshold above the price, no estimate of ours makes the deal one."""
    if estimate.thin:
        return f"the estimate rests on thin evidence ({estimate.thin})"
    if deal.claimed_price is not None and deal.claimed_price - deal.price <= threshold:
        return (f"the seller's own regular price {money(deal.claimed_price)} is only "
                f"{money(deal.claimed_price - deal.price)} above the price {money(deal.price)}, under the "
                f"{money(threshold)} threshold")
    if estimate.value - deal.price <= threshold:
        return f"estimated {money(estimate.value)}: not {money(threshold)} above the price {money(deal.price)}"
    if estimate.low is not None and deal.price >= estimate.low:
        return f"the price {money(deal.price)} is not under the interval's low end {money(estimate.low)}"
    if estimate.evidence:
        closest = sorted(estimate.evidence, key=lambda n: -n.similarity)[:EVIDENCE_NEIGHBOURS]
        similar = neighbour_estimate(closest, prior=False)
        if similar - deal.price <= threshold:
            return (f"the most similar known products cost about {money(similar)}: "
                    f"not {money(threshold)} above the price {money(deal.price)}")
    return ""


def qualify(deal: Deal, estimate: Estimate, threshold: float) -> Opportunity | None:
    """The opportunity when the deal is worth telling about (see why_not), else None."""
    if why_not(deal, estimate, threshold):
        return None
    discount = estimate.value - deal.price
    why = f"estimated {money(estimate.value)} vs price {money(deal.price)}: {money(discount)} below worth"
    if estimate.low is not None:
        why += f", under the interval's low end {money(estimate.low)}"
    return Opportunity(deal=deal, estimate=estimate, discount=round(discount, 2), reason=why)


class Appraisal(BaseModel):
    """A deal, what it is worth, and whether it is worth an alert and why (for a dry run)."""

    deal: Deal
    estimate: Estimate | None
    qualifies: bool
    why: str

    def json_line(self) -> str:
        e = self.estimate
        return json.dumps({
            "title": self.deal.title, "url": self.deal.url, "price": self.deal.price,
            "claimed_price": self.deal.claimed_price,
            "estimate": e.value if e else None, "low": e.low if e else None, "high": e.high if e else None,
            "evidence": ("thin" if e.thin else "enough") if e else "none", "thin": e.thin if e else "",
            "neighbours": [f"{n.title[:80]} ({money(n.price)})" for n in e.evidence[:3]] if e else [],
            "qualifies": self.qualifies, "why": self.why}, ensure_ascii=False)


def appraise(deals: Sequence[Deal], pricer: Pricer, threshold: float) -> list[Appraisal]:
    """Price each deal and judge it by the alert rule, touching nothing else."""
    out = []
    for deal in deals:
        try:
            estimate = pricer.estimate(deal.description)
        except ValueError as err:
            out.append(Appraisal(deal=deal, estimate=None, qualifies=False, why=f"could not be priced: {err}"))
            continue
        found = qualify(deal, estimate, threshold)
        out.append(Appraisal(deal=deal, estimate=estimate, qualifies=found is not None,
                             why=found.reason if found else why_not(deal, estimate, threshold)))
    return out


class ScanReport(BaseModel):
    scan: ScanResult
    new_deals: int
    assessed: int
    failed: list[str]
    opportunities: list[StoredOpportunity]
    delivery: DeliveryReport | None = None

    def summary(self) -> str:
        text = (f"{self.scan.summary()}; {self.new_deals} new, {self.assessed} priced, "
                f"{len(self.opportunities)} opportunities")
        if self.failed:
            text += f", {len(self.failed)} could not be priced"
        if (d := self.delivery) is not None:
            text += f"; alerts: {d.delivered} sent, {d.to_inbox} to inbox, {d.failed} failed"
        return text


class DealPipeline:
    def __init__(self, scanner: Scanner, memory: Memory, pricer: Pricer, messenger: MessagingAgent,
                 *, feeds: Sequence[str], threshold: float, notify_best: int, lock_path: Path,
                 watchlist: Watchlist | None = None, offers: OfferGroups | None = None,
                 digest: bool = False):
        self.scanner, self.memory, self.pricer, self.messenger = scanner, memory, pricer, messenger
        self.feeds = list(feeds)
        self.threshold = threshold
        self.notify_best = notify_best
        self.lock_path = lock_path
        self.watchlist = watchlist
        self.offers = offers  # groups each deal with earlier offers of its product: its price history
        self.digest = digest  # True: the daily digest reports deals and watch matches, not one push each

    def assess(self) -> tuple[int, list[str], list[int]]:
        """Price every deal not yet priced (also those a crash left behind)."""
        assessed, failed, opportunity_ids = 0, [], []
        for deal in self.memory.deals_to_assess():
            try:
                estimate = self.pricer.estimate(deal.description)
            except ValueError as err:  # e.g. an empty description: record nothing, say why
                failed.append(f"{deal.title[:60]}: {err}")
                continue
            members = [Estimate(agent=name, value=value) for name, value in estimate.members.items()]
            found = self.memory.save_assessment(deal, estimate, qualify(deal, estimate, self.threshold),
                                                members)
            assessed += 1
            if found is not None:
                opportunity_ids.append(found)
        return assessed, failed, opportunity_ids

    def scan(self, feeds: Sequence[str] | None = None, *, notify: bool = True) -> ScanReport:
        """One whole run; raises ScanBusy when another scan holds the lock."""
        with scan_lock(self.lock_path):
            result = self.scanner.scan(list(feeds or self.feeds))
            new = self.memory.record_scan(result)
            if self.offers is not None:
                self.offers.record()
            assessed, failed, ids = self.assess()
            if self.watchlist is not None:
                self.watchlist.check(queue=not self.digest)
            found = [o for o in self.memory.list_opportunities(limit=max(len(ids), 1)) if o.id in ids]
            delivery = self.notify() if notify else None
        report = ScanReport(scan=result, new_deals=len(new), assessed=assessed, failed=failed,
                            opportunities=found, delivery=delivery)
        log.info("scan: %s", report.summary())
        return report

    def notify(self) -> DeliveryReport:
        """Queue the best undecided opportunities (with the daily digest on, that digest reports
        them), then deliver everything still pending."""
        undecided = self.memory.undecided_opportunities()
        if undecided and not self.digest:
            self.messenger.queue(undecided, best=self.notify_best)
        return self.messenger.deliver_pending()
