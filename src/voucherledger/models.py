"""Every table, imported in one place so Alembic sees the whole metadata."""

from voucherledger.accounts.models import Account, ApiKey, Member
from voucherledger.core.changes import ChangeRecord
from voucherledger.core.db import Base
from voucherledger.core.events import Event, EventCounter, EventRecipient
from voucherledger.core.idempotency import IdempotencyRecord
from voucherledger.evidence.models import EvidenceBlob, EvidenceFile
from voucherledger.ledger.models import (
    JournalTransaction,
    LedgerAccount,
    Posting,
    Seal,
    SealBlock,
    SealQueue,
    SigningKey,
)
from voucherledger.people.session_models import SigninFailure, WebSession
from voucherledger.programmes.models import Accreditation, Programme, ProgrammeParty
from voucherledger.redemptions.models import CodeFailure, Feedback, Redemption
from voucherledger.settlements.models import Settlement
from voucherledger.sweep.models import Lease
from voucherledger.vouchers.models import Voucher
from voucherledger.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

metadata = Base.metadata

__all__ = [
    "Account",
    "Accreditation",
    "ApiKey",
    "ChangeRecord",
    "CodeFailure",
    "Event",
    "EventCounter",
    "EventRecipient",
    "EvidenceBlob",
    "EvidenceFile",
    "Feedback",
    "IdempotencyRecord",
    "JournalTransaction",
    "Lease",
    "LedgerAccount",
    "Member",
    "Posting",
    "Programme",
    "ProgrammeParty",
    "Redemption",
    "Seal",
    "SealBlock",
    "SealQueue",
    "Settlement",
    "SigninFailure",
    "SigningKey",
    "Voucher",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
