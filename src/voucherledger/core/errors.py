"""The errors a client may see, each with an HTTP status and a stable ``code``.

Services raise an :class:`AppError` subclass; routes declare the ones they may
raise with :func:`problem_responses`, so the OpenAPI document lists them. The
handlers that render them as RFC 9457 ``application/problem+json`` live in the app
layer (:mod:`voucherledger.problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """Base of every error a client may see. ``code`` is part of the API contract."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class Unauthenticated(AppError):
    """No API key, an unknown key, or a revoked key."""

    status, code, title = 401, "unauthenticated", "Authentication required"


class CsrfFailed(AppError):
    """A state-changing request authenticated by the session cookie without the
    session's ``X-CSRF-Token`` header (or with a wrong one)."""

    status, code, title = 403, "csrf_failed", "CSRF token missing or wrong"


class TotpSetupRequired(AppError):
    """A second factor must be confirmed first: the member's account requires TOTP
    (the session may only set it up: ``/v1/me``, ``/v1/me/totp*``, sign-out), or the
    member is approving a payout for a funder."""

    status, code, title = 403, "totp_setup_required", "Second factor setup required"


class Forbidden(AppError):
    """The caller's role may not use this endpoint at all."""

    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    """Unknown, or belongs to another party (never 403 for other parties' objects)."""

    status, code, title = 404, "not_found", "Not found"


class ValidationFailed(AppError):
    """Input that is well-formed JSON but breaks a rule; ``errors`` lists the fields."""

    status, code, title = 422, "validation_error", "Validation failed"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail, errors=list(errors))


class WeakPassword(ValidationFailed):
    """A new password shorter than 12 characters, longer than 1024, or a common one
    (the shipped list, also with digits or punctuation added, or repeated)."""

    code, title = "weak_password", "Weak password"


class WebhookUrlInvalid(ValidationFailed):
    """A webhook URL that is not an absolute URL with a host, holds a user or password,
    or is longer than 2000 characters."""

    code, title = "webhook_url_invalid", "Webhook URL invalid"


class WebhookUrlInsecure(ValidationFailed):
    """A webhook URL that is not https (allowed only with ``webhook_allow_insecure_urls``)."""

    code, title = "webhook_url_insecure", "Webhook URL not https"


class WebhookUrlNotPublic(ValidationFailed):
    """A webhook URL whose host does not resolve, or resolves to an address that is not
    public (private, loopback, link-local, multicast, reserved, unspecified)."""

    code, title = "webhook_url_not_public", "Webhook URL not public"


class Conflict(AppError):
    """The request clashes with the current state of an object."""

    status, code, title = 409, "conflict", "Conflict"


class DeliveryInFlight(AppError):
    """The webhook delivery is being sent right now (a worker holds its lease); retry
    it once that attempt is recorded."""

    status, code, title = 409, "delivery_in_flight", "Delivery in flight"


class RotationInProgress(AppError):
    """The webhook endpoint's previous secret still signs (within 24 hours of the last
    rotation); a second rotation would drop it before receivers have moved on."""

    status, code, title = 409, "rotation_in_progress", "Rotation in progress"


class MemberExists(AppError):
    """The account has a member with this email already (compared without case)."""

    status, code, title = 409, "member_exists", "Member exists"


class LastOwner(AppError):
    """The change would leave the account without an active owner."""

    status, code, title = 409, "last_owner", "Last owner"


class InviteInvalid(AppError):
    """No open invitation has this token: unknown, or used already (one answer for both)."""

    status, code, title = 404, "invite_invalid", "Invitation invalid"


class InviteExpired(AppError):
    """The invitation's token is past its expiry; an owner sends a new one."""

    status, code, title = 410, "invite_expired", "Invitation expired"


class IdempotencyKeyReused(AppError):
    """The same Idempotency-Key was sent earlier with a different request."""

    status, code, title = 409, "idempotency_key_reused", "Idempotency key reused"


class InsufficientFunds(AppError):
    """A budget, voucher or payable would go below zero."""

    status, code, title = 409, "insufficient_funds", "Insufficient funds"


class InvalidState(AppError):
    """The object is not in a state that allows this transition."""

    status, code, title = 409, "invalid_state", "Invalid state"


class RateLimited(AppError):
    """Too many failed voucher-code look-ups by one supplier in a minute."""

    status, code, title = 429, "rate_limited", "Too many requests"


class ProgrammeClosed(AppError):
    """The programme is closed (or past its end): no deposits, no issuance."""

    status, code, title = 409, "programme_closed", "Programme closed"


class GroupNotEligible(AppError):
    """The group's type or origin country is outside the programme's rules."""

    status, code, title = 422, "group_not_eligible", "Group not eligible"


class LimitExceeded(AppError):
    """Above the programme's maximum voucher amount or per-group total."""

    status, code, title = 422, "limit_exceeded", "Limit exceeded"


class CategoryNotAllowed(AppError):
    """A service category outside what the programme, voucher or supplier allows."""

    status, code, title = 422, "category_not_allowed", "Category not allowed"


class SupplierNotAccredited(AppError):
    """The supplier is not (or no longer) accredited for this programme and category."""

    status, code, title = 403, "supplier_not_accredited", "Supplier not accredited"


class VoucherExpired(AppError):
    status, code, title = 409, "voucher_expired", "Voucher expired"


class VoucherRevoked(AppError):
    status, code, title = 409, "voucher_revoked", "Voucher revoked"


class VoucherExhausted(AppError):
    status, code, title = 409, "voucher_exhausted", "Voucher exhausted"


class ExpiryNotExtended(ValidationFailed):
    """A voucher's new ``expires_at`` is not later than its current one: a
    correction may only extend it."""

    code, title = "expiry_not_extended", "Expiry not extended"


class AlreadySettled(AppError):
    status, code, title = 409, "already_settled", "Already settled"


class NothingToSettle(AppError):
    status, code, title = 409, "nothing_to_settle", "Nothing to settle"


class SettlementPending(AppError):
    """The claim is covered by a proposed settlement awaiting approval: it cannot be
    refunded until the settlement is rejected (and is paid if it is approved)."""

    status, code, title = 409, "settlement_pending", "Settlement pending"


class SecondPersonRequired(AppError):
    """Two-person approval: the approver must be a person (not an account key) other
    than the one who proposed."""

    status, code, title = 403, "second_person_required", "Second person required"


class EvidenceEmpty(AppError):
    """An evidence upload whose file has no bytes."""

    status, code, title = 422, "evidence_empty", "Evidence file empty"


class EvidenceTypeNotAllowed(AppError):
    """An evidence file that is not a PDF, JPEG or PNG by its content (its first
    bytes); the file name and the part's Content-Type are not asked."""

    status, code, title = 415, "evidence_type_not_allowed", "Evidence type not allowed"


class EvidenceTooLarge(AppError):
    """An evidence file above ``evidence_max_bytes`` (10 MiB by default)."""

    status, code, title = 413, "evidence_too_large", "Evidence file too large"


class EvidenceInvalid(ValidationFailed):
    """A claim's ``evidence_ids`` names a file that is unknown, not the claiming
    supplier's own upload, or backs another claim already; ``errors`` says which."""

    code, title = "evidence_invalid", "Evidence invalid"


class UnsupportedMediaType(AppError):
    """A request body that is not JSON (``application/json`` or a ``+json`` type)."""

    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class PayloadTooLarge(AppError):
    """A request body above the route's limit (``max_body_bytes``, or
    ``max_batch_body_bytes`` for a batch issuance); refused before it is read in full."""

    status, code, title = 413, "payload_too_large", "Payload too large"


class HeadersTooLarge(AppError):
    """Request headers above ``max_header_bytes`` in all."""

    status, code, title = 431, "headers_too_large", "Request headers too large"


class DatabaseUnavailable(AppError):
    """The database cannot be reached, lost the connection, or refuses connections; try
    again after ``Retry-After`` seconds. A POST whose connection was lost at COMMIT may
    or may not have taken effect: send it again with the same Idempotency-Key, which
    replays it if it did."""

    status, code, title = 503, "database_unavailable", "Database unavailable"
    retry_after_seconds = 2

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_seconds)})


class ReadReplicaUnavailable(DatabaseUnavailable):
    """The read replica (``VOUCHERLEDGER_READ_DATABASE_URL``) that answers the exports,
    the reports and the journal's list and trial balance cannot be reached; the
    primary, and every write, are not affected. Try again after ``Retry-After``
    seconds."""

    code, title = "read_replica_unavailable", "Read replica unavailable"


class SealingRefused(AppError):
    """The server's signing key is not the chain's current key in the signing key
    history, so it seals nothing (section 5 of issue 9: the signing key). Not the
    client's fault: the operator restores the key or records the new one with
    ``voucherledger keys rotate-signing``."""

    status, code, title = 503, "sealing_refused", "Sealing refused"


class BatchRejected(AppError):
    """A batch with at least one bad item: nothing is written, every bad item is listed.

    Status and code are those of the first bad item; ``errors`` holds
    ``{index, code, detail}`` for each bad item.
    """

    def __init__(self, failures: Sequence[tuple[int, AppError]]) -> None:
        first = failures[0][1]
        self.status, self.code, self.title = first.status, first.code, first.title
        detail = f"{len(failures)} item(s) of the batch are refused; nothing was written."
        super().__init__(
            detail,
            errors=[
                {"index": index, "code": err.code, "detail": err.detail} for index, err in failures
            ],
        )


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of this API."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
    request_id: str | None = None


def problem_responses(
    *errors: type[AppError], validation: bool = True
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` mapping that documents a route's errors in OpenAPI.

    401 and 503 are always there, and 422 unless ``validation=False`` (a route that
    takes no input at all): declaring 422 keeps FastAPI from documenting its own
    ``HTTPValidationError`` body, which this API never sends.
    """
    always: tuple[type[AppError], ...] = (
        (Unauthenticated, ValidationFailed) if validation else (Unauthenticated,)
    )
    return add_problems({}, *always, *errors, DatabaseUnavailable)


def add_problems(
    responses: dict[int | str, dict[str, Any]], *errors: type[AppError]
) -> dict[int | str, dict[str, Any]]:
    """``responses`` with ``errors`` added: a code joins the description of its status
    (``insufficient_funds, idempotency_key_reused``), a new status gets an entry."""
    out = {status: dict(entry) for status, entry in responses.items()}
    for err in errors:
        entry = out.setdefault(
            err.status,
            {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": ""},
        )
        described = entry.get("description", "")
        codes = described.split(", ") if described else []
        if err.code not in codes:
            codes.append(err.code)
        entry["description"] = ", ".join(codes)
    return out
