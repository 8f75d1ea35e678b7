"""Shared by the open-standard exports (IATI, 360Giving): the programmes asked for, and
the tally of what a streamed export wrote — the figures of its manifest.

An XML or JSON export in an open standard cannot carry our manifest inside the
standard's own structure, so the writers fill an :class:`ExportTally` that the
caller passes in; once the writer's iterator is exhausted the tally describes
exactly the bytes that were written (not a second query that could disagree).
The caller adds what only it knows — the seal hash and block height the export
covers — and ships the manifest beside the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from voucherledger.audit import repository
from voucherledger.core.money import to_major
from voucherledger.programmes.models import Programme


def load_programmes(session: Session, programme_ids: list[str]) -> list[Programme]:
    """The programmes in the order asked for. Raises ``LookupError`` naming any id that
    does not exist, and ``ValueError`` for an empty or repeating list: an export must
    not silently leave out what the caller asked it to cover."""
    if not programme_ids:
        raise ValueError("an export covers at least one programme")
    if len(set(programme_ids)) != len(programme_ids):
        raise ValueError("programme ids must not repeat")
    found = repository.programmes_by_id(session, programme_ids)
    missing = [pid for pid in programme_ids if pid not in found]
    if missing:
        raise LookupError(f"no programme {', '.join(missing)}")
    return [found[pid] for pid in programme_ids]


def rfc3339(value: datetime) -> str:
    """UTC, six fractional digits, ``Z`` — the journal's own time format."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


@dataclass
class ExportTally:
    """Counts and totals of one export. Amounts are minor units per currency.

    ``rows`` counts the export's records: IATI ``transaction`` elements, or
    360Giving grants. ``totals[currency][label]`` sums their values by a label the
    writer documents (IATI: the transaction type code, signed; 360Giving:
    ``awarded`` and ``disbursed``). ``first_at``/``last_at`` are the earliest and
    latest journal times the export drew on; ``since``/``until`` the period asked for.
    """

    format: str
    since: datetime | None = None
    until: datetime | None = None
    programmes: int = 0
    rows: int = 0
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None
    complete: bool = False

    def add(self, currency: str, label: str, amount: int) -> None:
        per_currency = self.totals.setdefault(currency, {})
        per_currency[label] = per_currency.get(label, 0) + amount

    def seen(self, at: datetime) -> None:
        if self.first_at is None or at < self.first_at:
            self.first_at = at
        if self.last_at is None or at > self.last_at:
            self.last_at = at

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts as integers of minor units and as exact major-unit text."""
        return {
            "format": self.format,
            "complete": self.complete,
            "programmes": self.programmes,
            "rows": self.rows,
            "period": {"since": _stamp(self.since), "until": _stamp(self.until)},
            "first_at": _stamp(self.first_at),
            "last_at": _stamp(self.last_at),
            "totals": {
                currency: {
                    label: {"amount": amount, "major": to_major(amount, currency)}
                    for label, amount in sorted(labels.items())
                }
                for currency, labels in sorted(self.totals.items())
            },
        }
