"""Memory: every deal seen, estimate, opportunity and notification, in SQLite (WAL).

Each step of the pipeline is one transaction that moves a deal forward, so a crash at any point
leaves work that the next run picks up, and nothing is done twice:

    record_scan(result)         deals stored once (keyed by guid, else URL), state 'new'
    deals_to_assess()           'new' deals, including those a crash left unpriced
    save_assessment(...)        estimates + opportunity (if any) + deal 'assessed', atomically
    undecided_opportunities()   opportunities not yet chosen or passed for notification
    queue_notifications(...)    notification intents (unique per deal) + decisions, atomically
    pending_notifications()     intents not yet delivered (new, failed, or cut off by a crash)
    claim_notification(...)     'sending': this process delivers it now (no other thread or process)
    begin_attempt / confirm_attempt   one record per channel tried: started, then confirmed
    mark_delivered / mark_failed

The chat keeps its turns here too (start_turn, record_step, finish_turn; turns() reads them back).

One class, one database, four files: store.py (the connection, schema and migrations), deals.py
(deals, estimates, opportunities), notifications.py (delivery, and why it shows a message once)
and turns.py (chat turns).
"""

from agents.memory.deals import DealStore, Evidence, StoredOpportunity, deal_key
from agents.memory.notifications import CLAIM_LEASE, Alert, Notification, NotificationStore, delivery_key
from agents.memory.store import MIGRATIONS, SCHEMA, StoreError
from agents.memory.turns import KEEP_TURNS, STEP_ARGUMENT_CHARS, STEP_RESULT_CHARS, Step, Turn, TurnStore

__all__ = ["CLAIM_LEASE", "KEEP_TURNS", "MIGRATIONS", "SCHEMA", "STEP_ARGUMENT_CHARS", "STEP_RESULT_CHARS",
           "Alert", "Evidence", "Memory", "Notification", "Step", "StoreError", "StoredOpportunity", "Turn",
           "deal_key", "delivery_key"]


class Memory(DealStore, NotificationStore, TurnStore):
    """The memory database: `Memory(path, keep_turns=...)`, a context manager that closes it."""
