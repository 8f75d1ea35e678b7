"""The suppliers' pages: redeem a voucher (type or scan the code, check what it may
pay, claim with evidence files), my claims (cancel a pending one, refund part of a
captured one), my settlements, a statement CSV of both, and the supplier's profile
with its contact and payout details.

Every page is answers of the API called as the signed-in member; what a role may do
is the API's to say. A claim is two kinds of call, each with a key derived from the
form's idempotency key: one ``POST /v1/evidence`` per file (``<key>-e<n>``), then
``POST /v1/redemptions`` (``<key>``). A double click or a reload sends the same form
again, the API replays every answer, and there is one claim backed by the same files.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.client import ApiProblem, Upload
from voucherledger.console.messages import CATEGORIES, N_, PROBLEMS
from voucherledger.console.templating import gettext_of
from voucherledger.console.web import (
    Me,
    console_router,
    files,
    form_key,
    page,
    read_form,
    redirect,
    signed_in,
    text,
)
from voucherledger.core.money import CURRENCY_CODES, MAX_SAFE_INTEGER, exponent, to_major

router = console_router()

CLAIM_STATUSES = ("pending", "captured", "voided")
CLAIMS_PER_PAGE = 50
EVIDENCE_TYPES = "application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png"
MAX_EVIDENCE_FILES = 10
# One post of the claim form carries this many files of the largest size (smaller
# ones: more, up to the ten a claim takes); app.py limits the body to it.
CLAIM_FORM_FILES = 4


def claim_form_max_bytes(evidence_max_bytes: int) -> int:
    """The largest body of ``POST /console/redeem/claim``: a few files at the largest
    and the form's fields (each file goes on to ``POST /v1/evidence``, limited there)."""
    return CLAIM_FORM_FILES * evidence_max_bytes + 1024 * 1024


# The API's field errors are for programmers; these are for the clerk.
CLAIM_FIELD_ERRORS: dict[str, str] = {
    "voucher_code": N_("This code has a typo: check each character."),
    "service_category": N_("Choose one of the categories listed."),
    "description": N_("Say what was delivered, in up to 2,000 characters."),
    "delivered_on": N_(
        "Give the date the service was delivered: not in the future, "
        "not before the voucher was given."
    ),
    "evidence_ids": N_("A file of this claim cannot be used. Choose it again."),
}
REFUND_FIELD_ERRORS: dict[str, str] = {
    "reason": N_("Say why, in up to 200 characters."),
}
PROFILE_FIELD_ERRORS: dict[str, str] = {
    "contact_email": N_("Give an email address such as name@example.org."),
    "contact_phone": N_("Give a phone number: digits, spaces and + ( ) - only."),
    "payout_iban": N_(
        "This IBAN is not valid: check the country letters, the length and the check digits."
    ),
    "payout_bic": N_("This BIC is not valid: it has 8 or 11 letters and digits."),
    "payout_account_holder": N_("Give the account holder's name, up to 200 characters."),
}
PROFILE_FIELDS = (
    "contact_email",
    "contact_phone",
    "payout_iban",
    "payout_bic",
    "payout_account_holder",
)
# A cell a spreadsheet would read as a formula starts with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_AMOUNT = re.compile(r"^(\d+)(?:[.,](\d*))?$")
# Thousands grouped with one mark and a decimal part after the other: "1,250.50",
# "1.250,50", "1,250,000". (A single "1,250" stays a decimal comma, as above.)
_GROUPED = re.compile(r"^(\d{1,3}(?:([.,])\d{3})(?:\2\d{3})*)(?:(?!\2)[.,](\d*))?$")


class AmountError(ValueError):
    """A typed amount that is not one the currency can hold; ``message`` in English,
    translated where it is shown."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message)
        self.message = message
        self.values = values

    def words(self, request: Request) -> str:
        translated: str = gettext_of(request)(self.message)
        return translated % self.values if self.values else translated


def _evidence_max_bytes(request: Request) -> int:
    limit: int = request.app.state.settings.evidence_max_bytes
    return limit


def parse_amount(typed: str, currency: str) -> int:
    """Major units as typed (``12.50``, ``12,50``, ``1 200``, ``1,250.50``) to exact minor
    units: from the string, never through a float. More decimals than the currency has,
    zero, or anything that is not a plain number is refused."""
    compact = re.sub(r"[\s\u00a0\u202f]", "", typed)
    if not compact:
        raise AmountError(N_("Give the amount."))
    if len(compact) > 30:
        raise AmountError(N_("This amount is too large."))
    digits = exponent(currency)
    match, grouped = _AMOUNT.match(compact), _GROUPED.match(compact)
    # A currency without decimals reads "1,250" as grouped: it has no other meaning.
    if grouped is not None and (match is None or digits == 0):
        whole, fraction = re.sub(r"[.,]", "", grouped.group(1)), grouped.group(3) or ""
    elif match is not None:
        whole, fraction = match.group(1), match.group(2) or ""
    else:
        raise AmountError(N_("Write the amount with digits and one decimal mark, such as 12.50."))
    if len(fraction) > digits:
        if digits == 0:
            raise AmountError(
                N_("%(currency)s has no decimals: give a whole number."), currency=currency
            )
        raise AmountError(
            N_("%(currency)s has %(digits)s decimals at most."), currency=currency, digits=digits
        )
    # Digits only, so the integer is exact: no float, no rounding.
    minor = int(whole + fraction.ljust(digits, "0"))
    if minor <= 0:
        raise AmountError(N_("The amount must be more than zero."))
    if minor > MAX_SAFE_INTEGER:
        raise AmountError(N_("This amount is too large."))
    return minor


def csv_cell(value: object) -> str:
    """A text cell a spreadsheet shows as text: a leading ``= + - @`` (or tab, CR)
    would make it a formula, so it gets a ``'`` in front."""
    if value is None:
        return ""
    cell = str(value)
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _field_words(request: Request, problem: ApiProblem, known: dict[str, str]) -> dict[str, str]:
    """The API's field errors, in the words of ``known`` where it has them."""
    gettext = gettext_of(request)
    return {
        name: gettext(known[name]) if name in known else message
        for name, message in problem.field_errors().items()
        if name != "_form"
    }


def _category_words(request: Request) -> dict[str, str]:
    gettext = gettext_of(request)
    return {code: gettext(words) for code, words in CATEGORIES.items()}


# --- redeem: the code, the check, the claim -----------------------------------------


def _redeem_page(request: Request, me: Me, *, status: int = 200, **context: Any) -> Response:
    today = datetime.now(UTC).date().isoformat()
    defaults: dict[str, Any] = {
        "code": "",
        "validation": None,
        "claim": {"delivered_on": today},
        "today": today,
        "errors": {},
        "attached": [],
        "check_problem": None,
        "claim_problem": None,
        "categories": _category_words(request),
        "evidence_types": EVIDENCE_TYPES,
        "max_file_bytes": _evidence_max_bytes(request),
        "max_total_bytes": claim_form_max_bytes(_evidence_max_bytes(request)) - 512 * 1024,
        "max_files": MAX_EVIDENCE_FILES,
    }
    return page(request, me, "supplier/redeem.html", **{**defaults, **context}, http_status=status)


def _check_refusal(problem: ApiProblem) -> ApiProblem:
    """A refused check in the words of the redeem page: an unknown code (404) is not
    a missing page here, and a mistyped one is a typo."""
    if problem.status == 404:
        return ApiProblem(404, "voucher_unknown", "")
    if problem.code == "validation_error":
        return ApiProblem(422, "voucher_code_invalid", "")
    return problem


async def _validate(me: Me, code: str) -> dict[str, Any]:
    found: dict[str, Any] = await me.api.post("/v1/vouchers/validate", {"voucher_code": code})
    return found


@router.get("/redeem")
async def redeem(request: Request) -> Response:
    me = await signed_in(request)
    return _redeem_page(request, me, code=request.query_params.get("code", "").strip()[:64])


@router.post("/redeem/check")
async def check(request: Request) -> Response:
    """What a claim against the code could take (``POST /v1/vouchers/validate``, which
    counts a wrong code towards the failed-code limit), then the claim form."""
    me = await signed_in(request)
    form = await read_form(request, me)
    code = text(form, "voucher_code")[:64]
    try:
        validation = await _validate(me, code)
    except ApiProblem as problem:
        if problem.code == "forbidden":
            raise  # a viewer: the refused page says why
        refusal = _check_refusal(problem)
        return _redeem_page(
            request,
            me,
            status=refusal.status if refusal.status in (403, 404, 409, 410, 429) else 422,
            code=code,
            check_problem=refusal,
        )
    return _redeem_page(request, me, code=code, validation=validation)


def _claim_values(form: FormData) -> dict[str, str]:
    return {
        name: text(form, name)
        for name in ("amount", "service_category", "description", "delivered_on")
    }


def _attached(form: FormData) -> list[tuple[str, str]]:
    """The files uploaded by an earlier try of this claim that the form still keeps:
    ``evidence_id`` (ticked boxes) with their names (``evidence_label``: ``id|name``)."""
    labels: dict[str, str] = {}
    for label in form.getlist("evidence_label"):
        if isinstance(label, str) and "|" in label:
            evidence_id, _, name = label.partition("|")
            labels[evidence_id] = name
    kept: list[tuple[str, str]] = []
    for value in form.getlist("evidence_id"):
        if isinstance(value, str) and value and value not in dict(kept):
            kept.append((value[:40], labels.get(value, value)[:200]))
    return kept[:MAX_EVIDENCE_FILES]


async def _claim_again(
    request: Request,
    me: Me,
    code: str,
    *,
    status: int,
    values: dict[str, str],
    attached: list[tuple[str, str]],
    errors: dict[str, str] | None = None,
    problem: ApiProblem | None = None,
) -> Response:
    """The claim form again, with what was typed and why it was refused; the facts of
    the voucher looked up afresh (they may have changed)."""
    try:
        validation = await _validate(me, code)
    except ApiProblem as refused:
        return _redeem_page(
            request,
            me,
            status=refused.status if refused.status in (403, 404, 409, 410, 429) else 422,
            code=code,
            check_problem=_check_refusal(refused),
        )
    return _redeem_page(
        request,
        me,
        status=status,
        code=code,
        validation=validation,
        claim=values,
        errors=errors or {},
        attached=attached,
        claim_problem=problem,
    )


def _status_of(problem: ApiProblem) -> int:
    return problem.status if problem.status in (403, 404, 409, 410, 413, 415, 429) else 422


@router.post("/redeem/claim")
async def claim(request: Request) -> Response:
    """Upload each evidence file, then claim with their ids; 303 to the claim."""
    me = await signed_in(request)
    form = await read_form(request, me)
    code = text(form, "voucher_code")[:64]
    currency = text(form, "currency")
    values = _claim_values(form)
    attached = _attached(form)
    uploads = files(form, "evidence")
    if currency not in CURRENCY_CODES:
        # The form did not come from the check: look the voucher up again.
        return await _claim_again(request, me, code, status=422, values=values, attached=attached)
    errors: dict[str, str] = {}
    amount: int | None = None
    try:
        amount = parse_amount(values["amount"], currency)
    except AmountError as refused:
        errors["amount"] = refused.words(request)
    if not values["service_category"]:
        errors["service_category"] = gettext_of(request)(CLAIM_FIELD_ERRORS["service_category"])
    if not values["description"]:
        errors["description"] = gettext_of(request)(CLAIM_FIELD_ERRORS["description"])
    if len(attached) + len(uploads) > MAX_EVIDENCE_FILES:
        errors["evidence"] = gettext_of(request)(N_("Attach 10 files at most."))
    if errors or amount is None:
        return await _claim_again(
            request, me, code, status=422, values=values, attached=attached, errors=errors
        )
    key = form_key(form)
    evidence_ids = [evidence_id for evidence_id, _ in attached]
    for number, upload in enumerate(uploads):
        content = await upload.read()
        name = (upload.filename or "file")[:200]
        try:
            made = await me.api.call(
                "POST",
                "/v1/evidence",
                files={
                    "file": Upload(name, content, upload.content_type or "application/octet-stream")
                },
                idempotency_key=f"{key}-e{number}",
            )
        except ApiProblem as refused:
            if refused.status in (401, 403):
                raise
            words = gettext_of(request)(N_("%(name)s: %(problem)s")) % {
                "name": name,
                "problem": _problem_words(request, refused),
            }
            return await _claim_again(
                request,
                me,
                code,
                status=_status_of(refused),
                values=values,
                attached=attached,
                errors={"evidence": words},
            )
        evidence_ids.append(str(made["id"]))
        attached.append((str(made["id"]), name))
    body: dict[str, Any] = {
        "voucher_code": code,
        "amount": amount,
        "service_category": values["service_category"],
        "description": values["description"],
        "evidence_ids": evidence_ids,
    }
    if values["delivered_on"]:
        body["delivered_on"] = values["delivered_on"]
    try:
        made = await me.api.post("/v1/redemptions", body, key=key)
    except ApiProblem as refused:
        if refused.status in (401, 403) and refused.code != "supplier_not_accredited":
            raise
        errors = _field_words(request, refused, CLAIM_FIELD_ERRORS)
        if "evidence_ids" in errors or refused.code == "evidence_invalid":
            errors["evidence"] = errors.pop(
                "evidence_ids", gettext_of(request)(CLAIM_FIELD_ERRORS["evidence_ids"])
            )
            attached = []  # choose the files again
        if refused.code in ("insufficient_funds", "limit_exceeded"):
            errors["amount"] = _problem_words(request, refused)
        if refused.code in ("category_not_allowed", "supplier_not_accredited"):
            errors["service_category"] = _problem_words(request, refused)
        return await _claim_again(
            request,
            me,
            code,
            status=_status_of(refused),
            values=values,
            attached=attached,
            errors=errors,
            problem=refused,
        )
    return redirect(f"/console/my-claims/{made['id']}", notice="claim_made")


def _problem_words(request: Request, problem: ApiProblem) -> str:
    if problem.code in PROBLEMS:
        words: str = gettext_of(request)(PROBLEMS[problem.code])
        return words
    return problem.detail or problem.code


# --- my claims -----------------------------------------------------------------------


async def _all_newest_first(me: Me, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list of mine, newest first (the API lists oldest first)."""
    items: list[dict[str, Any]] = await me.api.all_pages(path, limit=500, **params)
    return list(reversed(items))


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


@router.get("/my-claims")
async def my_claims(request: Request) -> Response:
    """My claims, newest first, filtered by status (a GET form; htmx swaps the table)."""
    me = await signed_in(request)
    status = request.query_params.get("status", "")
    if status not in CLAIM_STATUSES:
        status = ""
    claims = await _all_newest_first(me, "/v1/redemptions", status=status)
    number = _page_number(request)
    pages = max(1, -(-len(claims) // CLAIMS_PER_PAGE))
    number = min(number, pages)
    shown = claims[(number - 1) * CLAIMS_PER_PAGE : number * CLAIMS_PER_PAGE]
    return page(
        request,
        me,
        "supplier/claims.html",
        claims=shown,
        total=len(claims),
        status=status,
        statuses=CLAIM_STATUSES,
        number=number,
        pages=pages,
        categories=_category_words(request),
    )


def _claim_page(
    request: Request, me: Me, claim: dict[str, Any], *, status: int = 200, **context: Any
) -> Response:
    refundable = int(claim["amount"]) - int(claim["refunded_amount"])
    return page(
        request,
        me,
        "supplier/claim.html",
        claim=claim,
        refundable=refundable,
        may_refund=claim["status"] == "captured" and not claim["settled"] and refundable > 0,
        categories=_category_words(request),
        errors=context.pop("errors", {}),
        refund=context.pop("refund", {}),
        **context,
        http_status=status,
    )


async def _claim(me: Me, redemption_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await me.api.get(f"/v1/redemptions/{redemption_id}")
    return found


@router.get("/my-claims/{redemption_id}")
async def claim_page(request: Request, redemption_id: str) -> Response:
    me = await signed_in(request)
    return _claim_page(request, me, await _claim(me, redemption_id))


@router.post("/my-claims/{redemption_id}/cancel")
async def cancel(request: Request, redemption_id: str) -> Response:
    """Withdraw a pending claim: its hold goes back to the voucher."""
    me = await signed_in(request)
    form = await read_form(request, me)
    try:
        await me.api.post(f"/v1/redemptions/{redemption_id}/cancel", key=form_key(form))
    except ApiProblem as refused:
        if refused.status in (401, 403, 404):
            raise
        claim = await _claim(me, redemption_id)
        return _claim_page(request, me, claim, status=_status_of(refused), problem=refused)
    return redirect(f"/console/my-claims/{redemption_id}", notice="claim_cancelled")


@router.post("/my-claims/{redemption_id}/refund")
async def refund(request: Request, redemption_id: str) -> Response:
    """Give back part of a captured claim not yet paid out: an amount in major units
    and a reason, as ``POST /v1/redemptions/{id}/refunds`` takes them."""
    me = await signed_in(request)
    form = await read_form(request, me)
    claim = await _claim(me, redemption_id)
    values = {"amount": text(form, "amount"), "reason": text(form, "reason")}
    errors: dict[str, str] = {}
    amount: int | None = None
    try:
        amount = parse_amount(values["amount"], str(claim["currency"]))
    except AmountError as refused:
        errors["amount"] = refused.words(request)
    if not values["reason"]:
        errors["reason"] = gettext_of(request)(REFUND_FIELD_ERRORS["reason"])
    if errors or amount is None:
        return _claim_page(request, me, claim, status=422, errors=errors, refund=values)
    try:
        await me.api.post(
            f"/v1/redemptions/{redemption_id}/refunds",
            {"amount": amount, "reason": values["reason"]},
            key=form_key(form),
        )
    except ApiProblem as refused:
        if refused.status in (401, 403, 404):
            raise
        errors = _field_words(request, refused, REFUND_FIELD_ERRORS)
        if refused.code == "insufficient_funds":
            left = int(claim["amount"]) - int(claim["refunded_amount"])
            currency = str(claim["currency"])
            errors["amount"] = gettext_of(request)(
                N_("At most %(amount)s %(currency)s can be refunded.")
            ) % {"amount": to_major(left, currency), "currency": currency}
        return _claim_page(
            request,
            me,
            claim,
            status=_status_of(refused),
            errors=errors,
            refund=values,
            problem=refused,
        )
    return redirect(f"/console/my-claims/{redemption_id}", notice="claim_refunded")


# --- settlements and the statement ---------------------------------------------------


@router.get("/settlements")
async def settlements(request: Request) -> Response:
    """My settlements, newest first: amount, status and the payout reference."""
    me = await signed_in(request)
    found = await _all_newest_first(me, "/v1/settlements")
    return page(request, me, "supplier/settlements.html", settlements=found)


STATEMENT_COLUMNS = (
    "record",
    "id",
    "date",
    "status",
    "programme_id",
    "voucher_id",
    "category",
    "description",
    "amount_minor",
    "amount_major",
    "refunded_minor",
    "refunded_major",
    "currency",
    "settlement_id",
    "payout_reference",
)


def statement_rows(claims: list[dict[str, Any]], payouts: list[dict[str, Any]]) -> list[list[str]]:
    """One row per claim and per settlement, oldest first; text cells made safe for a
    spreadsheet, money in minor and in major units next to the currency."""
    paid_by: dict[str, dict[str, Any]] = {}
    for payout in payouts:
        if payout["status"] != "rejected":
            for redemption_id in payout["redemption_ids"]:
                paid_by[redemption_id] = payout
    rows: list[tuple[str, list[str]]] = []
    for item in claims:
        currency = str(item["currency"])
        paid = paid_by.get(str(item["id"]))
        rows.append(
            (
                str(item["created_at"]),
                [
                    "claim",
                    csv_cell(item["id"]),
                    csv_cell(item["created_at"]),
                    csv_cell(item["status"]),
                    csv_cell(item["programme_id"]),
                    csv_cell(item["voucher_id"]),
                    csv_cell(item["service_category"]),
                    csv_cell(item["description"]),
                    str(item["amount"]),
                    to_major(int(item["amount"]), currency),
                    str(item["refunded_amount"]),
                    to_major(int(item["refunded_amount"]), currency),
                    csv_cell(currency),
                    csv_cell(paid["id"] if paid else ""),
                    csv_cell(paid["payout_reference"] if paid else ""),
                ],
            )
        )
    for payout in payouts:
        currency = str(payout["currency"])
        rows.append(
            (
                str(payout["created_at"]),
                [
                    "settlement",
                    csv_cell(payout["id"]),
                    csv_cell(payout["created_at"]),
                    csv_cell(payout["status"]),
                    csv_cell(payout["programme_id"]),
                    "",
                    "",
                    "",
                    str(payout["amount"]),
                    to_major(int(payout["amount"]), currency),
                    "",
                    "",
                    csv_cell(currency),
                    csv_cell(payout["id"]),
                    csv_cell(payout["payout_reference"]),
                ],
            )
        )
    rows.sort(key=lambda row: (row[0], row[1][1]))
    return [row for _, row in rows]


@router.get("/statement.csv")
async def statement(request: Request) -> Response:
    """A CSV of every claim and settlement of mine, for a spreadsheet."""
    me = await signed_in(request)
    claims: list[dict[str, Any]] = await me.api.all_pages("/v1/redemptions", limit=500)
    payouts: list[dict[str, Any]] = await me.api.all_pages("/v1/settlements", limit=500)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    writer.writerows(statement_rows(claims, payouts))
    day = datetime.now(UTC).date().isoformat()
    # A byte-order mark, so that a spreadsheet reads the accents of descriptions right.
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{me.account_id}-{day}.csv"'
        },
    )


# --- the profile ---------------------------------------------------------------------


async def _account(me: Me) -> dict[str, Any]:
    found: dict[str, Any] = await me.api.get(f"/v1/accounts/{me.account_id}")
    return found


def _profile_page(
    request: Request, me: Me, account: dict[str, Any], *, status: int = 200, **context: Any
) -> Response:
    profile = account.get("supplier") or {}
    values = context.pop("values", None) or {
        name: profile.get(name) or "" for name in PROFILE_FIELDS
    }
    return page(
        request,
        me,
        "supplier/profile.html",
        account=account,
        profile=profile,
        values=values,
        may_edit=me.role == "owner",
        errors=context.pop("errors", {}),
        categories=_category_words(request),
        **context,
        http_status=status,
    )


@router.get("/profile")
async def profile(request: Request) -> Response:
    me = await signed_in(request)
    return _profile_page(request, me, await _account(me))


@router.post("/profile")
async def save_profile(request: Request) -> Response:
    """The owner changes contact and payout details (``PATCH
    /v1/accounts/{id}/supplier-profile``); a field left empty is cleared."""
    me = await signed_in(request)
    form = await read_form(request, me)
    values = {name: text(form, name) for name in PROFILE_FIELDS}
    body = {name: value or None for name, value in values.items()}
    try:
        await me.api.call(
            "PATCH",
            f"/v1/accounts/{me.account_id}/supplier-profile",
            body=body,
            idempotency_key=form_key(form),
        )
    except ApiProblem as refused:
        if refused.status in (401, 403, 404):
            raise
        return _profile_page(
            request,
            me,
            await _account(me),
            status=_status_of(refused),
            values=values,
            errors=_field_words(request, refused, PROFILE_FIELD_ERRORS),
            problem=refused,
        )
    return redirect("/console/profile", notice="profile_saved")
