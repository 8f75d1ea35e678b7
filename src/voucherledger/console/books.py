"""The books for auditors (and funders and managers, as far as the API lets them):
the journal with filters, one transaction with its postings, an account's balance now
or at an instant, the trial balance, exports and the latest signed checkpoint.

Every figure is the API's (``/v1/ledger/*``, ``/v1/audit/*``) as the signed-in person:
the console adds no sums of its own but the per-currency totals of what a page shows.
Times are UTC throughout: typed dates are sent as ISO 8601 instants in UTC, and every
time on these pages is shown in UTC, as the journal records it.

The journal's order is the API's: by transaction id, so oldest first; the API's cursor
only goes forward ("Newer"), so the way back ("Older") is the trail of cursors the
pages came by, carried in the link. The API has no filter by kind: with one, the page
reads the API's pages (up to :data:`KIND_SCAN_PAGES` of them) and keeps those of that
kind, so a page may hold fewer rows than a full one and still have newer ones.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from voucherledger.console.client import ApiProblem
from voucherledger.console.members import member_names
from voucherledger.console.messages import N_
from voucherledger.console.templating import gettext_of
from voucherledger.console.web import Me, console_router, page, signed_in

router = console_router()

READERS = ("funder", "manager", "auditor")
EXPORTERS = ("funder", "auditor")
PER_PAGE = 50
# With a kind chosen: the API pages (of SCAN_LIMIT) one console page may read.
KIND_SCAN_PAGES = 10
SCAN_LIMIT = 200
# How many pages back the "Older" link can go (the trail rides in the URL).
MAX_TRAIL = 30
FIRST_PAGE = "~"  # the trail's mark of the first page (no cursor): not a base64url character

# The kinds of transaction (docs/ledger-format.md), in words.
KINDS: dict[str, str] = {
    "deposit": N_("Deposit"),
    "issue": N_("Issue of vouchers"),
    "hold": N_("Hold for a claim"),
    "capture": N_("Capture of a claim"),
    "void": N_("Void of a claim"),
    "refund": N_("Refund"),
    "revoke": N_("Revocation of a voucher"),
    "expire": N_("Expiry of a voucher"),
    "settle": N_("Settlement to a supplier"),
    "close": N_("Close of a programme"),
    "transfer": N_("Transfer"),
}
# The export formats: what the file is, in words.
FORMATS: dict[str, str] = {
    "jsonl": N_("JSON lines, sealed and signed (the file the offline verifier checks)"),
    "csv": N_("CSV, one posting a row (for a spreadsheet)"),
    "iati": N_("IATI activity XML (open standard)"),
    "360giving": N_("360Giving JSON (open standard)"),
}
FORMAT_NAMES: dict[str, str] = {
    "jsonl": N_("JSON lines"),
    "csv": N_("CSV"),
    "iati": N_("IATI XML"),
    "360giving": N_("360Giving JSON"),
}


# --- times: typed in UTC, sent as ISO 8601 UTC, shown in UTC ------------------------------


class TimeError(ValueError):
    """A typed date or time that is not one."""


def instant(typed: str, *, end_of_day: bool = False) -> str | None:
    """A date (``2026-11-30``) or a date and time (``2026-11-30T14:05``, as
    ``datetime-local`` sends it) typed in UTC, as an ISO 8601 UTC instant; a date alone
    is its first instant, or with ``end_of_day`` its last (the API's ``until`` is
    inclusive). Empty is None."""
    typed = typed.strip()
    if not typed:
        return None
    try:
        if "T" in typed:
            moment = datetime.fromisoformat(typed)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        else:
            day = date.fromisoformat(typed)
            moment = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    except (ValueError, OverflowError) as exc:  # overflow: an offset past year 1 or 9999
        raise TimeError(typed) from exc
    return moment.isoformat().replace("+00:00", "Z")


def utc_text(value: str | None) -> str:
    """An API time as ``2026-11-30 14:05:09 UTC``: unambiguous for an auditor."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _times(
    request: Request, params: dict[str, str], fields: dict[str, bool]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """The typed times of ``fields`` (name: end of day?) as instants, and the field errors."""
    words = gettext_of(request)
    out: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for name, end in fields.items():
        try:
            out[name] = instant(params.get(name, ""), end_of_day=end)
        except TimeError:
            out[name] = None
            errors[name] = words("Give a date such as 2026-11-30 (UTC).")
    return out, errors


# --- who is who -------------------------------------------------------------------------


async def _programmes(me: Me) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await me.api.all_pages("/v1/programmes")
    return found


def totals(postings: list[dict[str, Any]]) -> dict[str, int]:
    """The sum of the postings per currency (zero in a balanced transaction)."""
    out: dict[str, int] = defaultdict(int)
    for leg in postings:
        out[str(leg["currency"])] += int(leg["amount"])
    return dict(sorted(out.items()))


def moved(postings: list[dict[str, Any]]) -> dict[str, int]:
    """What a transaction moves, per currency: the sum of its positive postings."""
    out: dict[str, int] = defaultdict(int)
    for leg in postings:
        if int(leg["amount"]) > 0:
            out[str(leg["currency"])] += int(leg["amount"])
    return dict(sorted(out.items()))


def _row(txn: dict[str, Any], people: dict[str, str]) -> dict[str, Any]:
    made_by = txn.get("created_by")
    return {
        **txn,
        "time": utc_text(txn.get("created_at")),
        "moved": moved(txn["postings"]),
        "totals": totals(txn["postings"]),
        "made_by": people.get(made_by, made_by) if made_by else None,
        "made_by_named": bool(made_by and made_by in people),
    }


# --- the journal ------------------------------------------------------------------------


def _trail(raw: str) -> list[str]:
    return [part for part in raw.split(".") if part][-MAX_TRAIL:]


def _page_links(
    filters: dict[str, str], cursor: str | None, next_cursor: str | None, trail: list[str]
) -> dict[str, dict[str, str] | None]:
    """The query strings of the links to the newer page (the API's next cursor, this
    page's cursor added to the trail), the older one (the trail's last) and the oldest
    (no cursor): None where there is no such page."""
    newer = older = first = None
    if next_cursor:
        newer = {
            **filters,
            "cursor": next_cursor,
            "trail": ".".join([*trail, cursor or FIRST_PAGE]),
        }
    if cursor:
        back = trail[-1] if trail else FIRST_PAGE
        older = {**filters, "trail": ".".join(trail[:-1])}
        if back != FIRST_PAGE:
            older["cursor"] = back
            first = filters
    clean = {"newer": newer, "older": older, "first": first}
    return {
        name: {k: v for k, v in q.items() if v} if q is not None else None
        for name, q in clean.items()
    }


async def _journal_page(
    me: Me, params: dict[str, Any], cursor: str | None, kind: str
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the journal from the API, as filtered; with ``kind``, the
    transactions of that kind in up to :data:`KIND_SCAN_PAGES` of the API's pages."""
    if not kind:
        got = await me.api.get("/v1/ledger/transactions", limit=PER_PAGE, cursor=cursor, **params)
        return list(got["data"]), got.get("next_cursor")
    found: list[dict[str, Any]] = []
    for _ in range(KIND_SCAN_PAGES):
        got = await me.api.get("/v1/ledger/transactions", limit=SCAN_LIMIT, cursor=cursor, **params)
        found.extend(t for t in got["data"] if t["kind"] == kind)
        cursor = got.get("next_cursor")
        if not cursor or len(found) >= PER_PAGE:
            break
    return found, cursor


@router.get("/journal")
async def journal(request: Request) -> Response:
    """The journal of my programmes, filtered by programme, period, account and kind."""
    me = await signed_in(request, kind=READERS)
    query = request.query_params
    chosen = {
        "programme_id": query.get("programme_id", "").strip(),
        "from": query.get("from", "").strip(),
        "to": query.get("to", "").strip(),
        "account": query.get("account", "").strip(),
        "kind": query.get("kind", "").strip(),
    }
    if chosen["kind"] not in KINDS:
        chosen["kind"] = ""
    cursor = query.get("cursor", "").strip() or None
    trail = _trail(query.get("trail", ""))
    programmes = await _programmes(me)
    times, errors = _times(request, chosen, {"from": False, "to": True})
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    problem: ApiProblem | None = None
    status = 200
    if not errors:
        params = {
            "programme_id": chosen["programme_id"],
            "account": chosen["account"],
            "since": times["from"],
            "until": times["to"],
        }
        try:
            found, next_cursor = await _journal_page(me, params, cursor, chosen["kind"])
        except ApiProblem as refused:
            if refused.status not in (403, 404, 422):
                raise
            problem, status = refused, refused.status
        else:
            people = await member_names(me)
            rows = [_row(t, people) for t in found]
    else:
        status = 422
    links = _page_links({k: v for k, v in chosen.items() if v}, cursor, next_cursor, trail)
    return page(
        request,
        me,
        "books/journal.html",
        programmes=programmes,
        programme_names={p["id"]: p["name"] for p in programmes},
        kinds=KINDS,
        chosen=chosen,
        errors=errors,
        problem=problem,
        rows=rows,
        scanned=bool(chosen["kind"]),
        **links,
        http_status=status,
    )


@router.get("/journal/{txn_id}")
async def transaction(request: Request, txn_id: str) -> Response:
    """One transaction: its postings (summing to zero per currency), who made it, its
    place in the seal chain and its metadata, as the API returns them."""
    me = await signed_in(request, kind=READERS)
    txn: dict[str, Any] = await me.api.get(f"/v1/ledger/transactions/{txn_id}")
    people = await member_names(me)
    programme = None
    if txn.get("programme_id"):
        try:
            programme = await me.api.get(f"/v1/programmes/{txn['programme_id']}")
        except ApiProblem:
            programme = None
    metadata = [
        (key, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
        for key, value in sorted((txn.get("metadata") or {}).items())
    ]
    return page(
        request,
        me,
        "books/transaction.html",
        txn=_row(txn, people),
        programme=programme,
        actor_name=me.account["name"] if txn.get("actor") == me.account_id else None,
        metadata=metadata,
        kinds=KINDS,
    )


# --- balances and the trial balance -------------------------------------------------------


@router.get("/balances")
async def balances(request: Request) -> Response:
    """A ledger account's balance now and, with ``as_of``, at that instant."""
    me = await signed_in(request, kind=READERS)
    account = request.query_params.get("account", "").strip()
    typed = request.query_params.get("as_of", "").strip()
    times, errors = _times(request, {"as_of": typed}, {"as_of": False})
    now = then = None
    problem: ApiProblem | None = None
    status = 200
    if errors:
        status = 422
    elif account:
        path = f"/v1/ledger/accounts/{quote(account, safe=':')}/balance"
        try:
            now = await me.api.get(path)
            if times["as_of"]:
                then = await me.api.get(path, as_of=times["as_of"])
        except ApiProblem as refused:
            if refused.status not in (403, 404, 422):
                raise
            problem, status = refused, refused.status
    return page(
        request,
        me,
        "books/balances.html",
        account=account,
        as_of=typed,
        as_of_text=utc_text(times["as_of"]) if times.get("as_of") else "",
        now=now,
        then=then,
        errors=errors,
        problem=problem,
        http_status=status,
    )


@router.get("/trial-balance")
async def trial_balance(request: Request) -> Response:
    """A programme's trial balance now or at an instant: every account's balance, and
    the totals per currency (zero in balanced books)."""
    me = await signed_in(request, kind=READERS)
    programmes = await _programmes(me)
    programme_id = request.query_params.get("programme_id", "").strip()
    if not programme_id and len(programmes) == 1:
        programme_id = str(programmes[0]["id"])
    typed = request.query_params.get("as_of", "").strip()
    times, errors = _times(request, {"as_of": typed}, {"as_of": False})
    trial = None
    problem: ApiProblem | None = None
    status = 200
    if errors:
        status = 422
    elif programme_id:
        try:
            trial = await me.api.get(
                "/v1/ledger/trial-balance", programme_id=programme_id, as_of=times["as_of"]
            )
        except ApiProblem as refused:
            if refused.status not in (403, 404, 422):
                raise
            problem, status = refused, refused.status
    return page(
        request,
        me,
        "books/trial_balance.html",
        programmes=programmes,
        programme_id=programme_id,
        as_of=typed,
        as_of_text=utc_text(times["as_of"]) if times.get("as_of") else "",
        trial=trial,
        errors=errors,
        problem=problem,
        http_status=status,
    )


# --- exports and the checkpoint ------------------------------------------------------------


@router.get("/exports")
async def exports(request: Request) -> Response:
    """A form per export format, and the latest signed checkpoint to keep."""
    me = await signed_in(request, kind=EXPORTERS)
    programmes = await _programmes(me)
    checkpoint = None
    checkpoint_problem: ApiProblem | None = None
    try:
        checkpoint = await me.api.get("/v1/audit/checkpoint")
    except ApiProblem as refused:
        if refused.status >= 500 and refused.code != "sealing_refused":
            raise
        checkpoint_problem = refused
    return page(
        request,
        me,
        "books/exports.html",
        programmes=programmes,
        formats=FORMATS,
        format_names=FORMAT_NAMES,
        checkpoint=checkpoint,
        sealed_at=utc_text(checkpoint["sealed_at"]) if checkpoint else "",
        checkpoint_problem=checkpoint_problem,
    )


@router.get("/exports/download")
async def download(request: Request) -> Response:
    """The API's export file as it is, with its type and file name: the console adds
    nothing and leaves nothing out (the jsonl's hashes and signatures must verify)."""
    me = await signed_in(request, kind=EXPORTERS)
    query = request.query_params
    kind = query.get("format", "")
    if kind not in FORMATS:
        raise ApiProblem(404, "not_found", "")
    chosen = {"from": query.get("from", ""), "to": query.get("to", "")}
    times, errors = _times(request, chosen, {"from": False, "to": True})
    if errors:
        raise ApiProblem(422, "validation_error", next(iter(errors.values())))
    return await _pass_through(
        me,
        "/v1/audit/export",
        {
            "format": kind,
            "programme_id": query.get("programme_id", "").strip(),
            "since": times["from"],
            "until": times["to"],
        },
    )


@router.get("/exports/checkpoint.json")
async def checkpoint_file(request: Request) -> Response:
    """The latest checkpoint, the API's bytes as a file to keep outside the service
    (``voucherledger verify --checkpoint`` reads it)."""
    me = await signed_in(request, kind=EXPORTERS)
    return await _pass_through(
        me, "/v1/audit/checkpoint", {}, disposition='attachment; filename="checkpoint.json"'
    )


async def _pass_through(
    me: Me, path: str, params: dict[str, Any], *, disposition: str | None = None
) -> Response:
    """An API answer to the browser unchanged, with its type and file name, streamed
    as the API streams it: a journal of a million lines is never held whole here."""
    answer = await me.api.stream(path, params=params)
    return StreamingResponse(
        answer.body,
        media_type=answer.headers.get("content-type", "application/octet-stream"),
        headers={
            "Content-Disposition": answer.headers.get("content-disposition")
            or disposition
            or "attachment"
        },
    )
