"""Funders' and fund managers' programmes: the list, a new programme with every rule
explained, and a programme's dashboard (balances, where the money is, issuance and
claims over time, the women-led share) with deposit, close and sweep. Auditors read.

Every figure is an answer of the API as the signed-in person: the balances are those of
``GET /v1/programmes/{id}`` (from the ledger), issuance and claims per month are summed
from ``GET /v1/vouchers`` and ``GET /v1/redemptions`` of the programme, the women-led
share is the report's (``GET /v1/programmes/{id}/report``). Who may deposit, close or
sweep is the API's to decide; the page offers each form only to those it would accept
(funders deposit and close; funders and managers sweep; viewers and auditors read).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_percent
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.admin import CATEGORY_NAMES, GROUP_TYPE_NAMES, countries
from voucherledger.console.client import ApiProblem
from voucherledger.console.messages import N_
from voucherledger.console.supplier import AmountError, parse_amount
from voucherledger.console.templating import gettext_of
from voucherledger.console.web import (
    Me,
    console_router,
    end_of_day,
    form_key,
    page,
    read_form,
    redirect,
    refusal_status,
    signed_in,
    text,
)
from voucherledger.core.money import CURRENCY_CODES, exponent

router = console_router()

BASE = "/console/programmes"
PARTIES = ("funder", "manager", "auditor")
DEFAULT_CURRENCY = "EUR"

# The eight balances of a programme (``GET /v1/programmes/{id}``), in the order money
# moves; ``deposited`` is the sum of the seven others: where the money is now.
BALANCES: list[tuple[str, str, str]] = [
    ("deposited", N_("Deposited"), N_("Everything the funder has put in.")),
    (
        "unissued",
        N_("Not yet issued"),
        N_("Budget free for vouchers to any eligible group."),
    ),
    (
        "unissued_women_led_reserve",
        N_("Women-led reserve"),
        N_("Budget kept for vouchers to groups led by women."),
    ),
    ("outstanding", N_("On vouchers"), N_("Value groups can still spend on live vouchers.")),
    ("held", N_("Held by claims"), N_("Claims waiting for the group to confirm them.")),
    ("payable", N_("Owed to suppliers"), N_("Claims confirmed and not paid yet.")),
    ("settled", N_("Paid to suppliers"), N_("Claims paid by a settlement.")),
    (
        "returned_to_funder",
        N_("Returned to the funder"),
        N_("Budget given back when the programme closed, and value that came back after."),
    ),
]

STATUSES: dict[str, str] = {"open": N_("Open"), "closed": N_("Closed")}
APPROVALS: dict[str, str] = {
    "single": N_("One person: a payment is made when the funder creates it."),
    "two_person": N_(
        "Two people: one person of the funder proposes a payment, "
        "another (an approver or owner) approves it."
    ),
}

# The API's field errors are for programmers; these are for the funder's officer.
FIELD_ERRORS: dict[str, str] = {
    "name": N_("Give the programme a name, up to 200 characters."),
    "currency": N_("Choose the currency of the programme."),
    "service_categories": N_("Choose at least one category the programme pays for."),
    "eligible_group_types": N_("Choose types from the list, or none for every type."),
    "eligible_origin_countries": N_("Choose countries from the list, or none for every country."),
    "max_voucher_amount": N_("Give an amount more than zero, or leave it empty for no limit."),
    "max_total_per_group": N_("Give an amount more than zero, or leave it empty for no limit."),
    "women_led_reserve_pct": N_("Give a whole number from 0 to 100."),
    "voucher_validity_days": N_("Give a whole number of days from 1 to 3650."),
    "requires_group_confirmation": N_("Choose yes or no."),
    "hold_days": N_("Give a whole number of days from 1 to 365."),
    "settlement_approval": N_("Choose one of the two ways."),
    "manager_ids": N_(
        "Give the ids of fund managers' accounts (acc_…), each once and not also as an auditor."
    ),
    "auditor_ids": N_(
        "Give the ids of auditors' accounts (acc_…), each once and not also as a manager."
    ),
    "ends_at": N_("Give a date, or leave it empty for no end."),
    "amount": N_("Give an amount more than zero."),
    "reference": N_("Give a reference, such as the bank transfer's, up to 200 characters."),
}
RULE_FIELDS = (
    "eligible_group_types",
    "eligible_origin_countries",
    "max_voucher_amount",
    "max_total_per_group",
    "women_led_reserve_pct",
    "voucher_validity_days",
    "requires_group_confirmation",
    "hold_days",
    "settlement_approval",
)
WHOLE_NUMBERS = ("women_led_reserve_pct", "voucher_validity_days", "hold_days")
AMOUNTS = ("max_voucher_amount", "max_total_per_group")
LISTS = ("service_categories", "eligible_group_types", "eligible_origin_countries")
# What a new form starts with: the API's defaults.
DEFAULTS: dict[str, Any] = {
    "currency": DEFAULT_CURRENCY,
    "women_led_reserve_pct": "0",
    "voucher_validity_days": "365",
    "requires_group_confirmation": "yes",
    "hold_days": "14",
    "settlement_approval": "single",
}
_IDS = re.compile(r"[\s,;]+")


@cache
def currencies(language: str) -> list[tuple[str, str]]:
    """Every currency a programme may hold: code and name in ``language``, by code."""
    names = Locale.parse(language).currencies
    return [(code, f"{code} · {names.get(code, code)}") for code in sorted(CURRENCY_CODES)]


def _vocabulary(request: Request) -> dict[str, Any]:
    language = request.state.language
    return {
        "balance_names": BALANCES,
        "statuses": STATUSES,
        "approvals": APPROVALS,
        "group_types": GROUP_TYPE_NAMES,
        "categories": CATEGORY_NAMES,
        "countries": countries(language),
        "country_names": dict(countries(language)),
        "currencies": currencies(language),
    }


def percent(request: Request, value: Decimal) -> str:
    """A fraction (0.35) as a percentage in the reader's language (35%)."""
    return str(format_percent(value, format="#,##0.#%", locale=request.state.language))


async def programme_of(me: Me, programme_id: str) -> dict[str, Any]:
    """The programme as the API shows it to me (the not-found page if it is not mine)."""
    programme: dict[str, Any] = await me.api.get(f"/v1/programmes/{programme_id}")
    return programme


async def _party(request: Request) -> Me:
    """A person of a funder, a manager or an auditor; anyone else gets not-found."""
    return await signed_in(request, kind=PARTIES)


# --- the list ---------------------------------------------------------------------------


@router.get("/programmes")
async def programmes(request: Request) -> Response:
    """The programmes the person's account is a party of, oldest first."""
    me = await _party(request)
    listed = await me.api.all_pages("/v1/programmes")
    return page(request, me, "programmes/list.html", programmes=listed, **_vocabulary(request))


# --- a new programme ---------------------------------------------------------------------


def _values(form: FormData) -> dict[str, Any]:
    """The form as typed, to show it again."""
    values: dict[str, Any] = {
        k: text(form, k) for k in form if k not in ("csrf_token", "idempotency_key", *LISTS)
    }
    for name in LISTS:
        values[name] = [str(v) for v in form.getlist(name)]
    return values


def _whole(typed: str) -> int | str:
    """A whole number as the API takes it; anything else as typed, for the API to refuse
    with its field (it takes no strings for numbers)."""
    # ASCII digits only: "²".isdigit() is true and int() refuses it; "٣" would be 3.
    return int(typed) if re.fullmatch(r"[0-9]{1,9}", typed) else typed


def programme_body(request: Request, form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The body of ``POST /v1/programmes`` for the form, and the errors the console finds
    itself (an amount it cannot read, a date that is not one); what else is wrong is the
    API's to say. An empty rule is left out, so the API's default holds."""
    currency = text(form, "currency")
    body: dict[str, Any] = {
        "name": text(form, "name"),
        "currency": currency,
        "service_categories": [str(c) for c in form.getlist("service_categories")],
    }
    errors: dict[str, str] = {}
    rules: dict[str, Any] = {}
    for name in ("eligible_group_types", "eligible_origin_countries"):
        chosen = [str(v) for v in form.getlist(name) if str(v)]
        if chosen:
            rules[name] = chosen
    for name in AMOUNTS:
        if text(form, name):
            try:
                rules[name] = parse_amount(text(form, name), currency)
            except AmountError as refused:
                errors[name] = refused.words(request)
    for name in WHOLE_NUMBERS:
        if text(form, name):
            rules[name] = _whole(text(form, name))
    confirmation = text(form, "requires_group_confirmation")
    if confirmation in ("yes", "no"):
        rules["requires_group_confirmation"] = confirmation == "yes"
    if text(form, "settlement_approval"):
        rules["settlement_approval"] = text(form, "settlement_approval")
    body["rules"] = rules
    for name in ("manager_ids", "auditor_ids"):
        ids = [part for part in _IDS.split(text(form, name)) if part]
        if ids:
            body[name] = ids
    ends = text(form, "ends_at")
    if ends:
        try:
            body["ends_at"] = end_of_day(ends)
        except ValueError:
            errors["ends_at"] = gettext_of(request)(FIELD_ERRORS["ends_at"])
    return body, errors


def field_words(request: Request, problem: ApiProblem) -> dict[str, str]:
    """The API's field errors in plain words (the API's own where there are none)."""
    gettext = gettext_of(request)
    return {
        name: gettext(FIELD_ERRORS[name]) if name in FIELD_ERRORS else message
        for name, message in problem.field_errors().items()
    }


def _new_page(
    request: Request,
    me: Me,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    problem: ApiProblem | None = None,
) -> Response:
    return page(
        request,
        me,
        "programmes/new.html",
        values=values,
        errors=errors,
        problem=problem,
        **_vocabulary(request),
        http_status=status,
    )


@router.get("/programmes/new")
async def new_programme_form(request: Request) -> Response:
    me = await signed_in(request, kind="funder")
    values = {**DEFAULTS, "service_categories": [], **{n: [] for n in LISTS}}
    return _new_page(request, me, values=values, errors={})


@router.post("/programmes/new")
async def create_programme(request: Request) -> Response:
    me = await signed_in(request, kind="funder")
    form = await read_form(request, me)
    body, errors = programme_body(request, form)
    if errors:
        return _new_page(request, me, values=_values(form), errors=errors, status=422)
    try:
        made = await me.api.post("/v1/programmes", body, key=form_key(form))
    except ApiProblem as problem:
        if problem.status in (401, 404):
            raise
        return _new_page(
            request,
            me,
            values=_values(form),
            errors=field_words(request, problem),
            status=refusal_status(problem),
            problem=problem,
        )
    return redirect(f"{BASE}/{made['id']}", notice="programme_created")


# --- a programme's dashboard ---------------------------------------------------------


def _month_label(request: Request, month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return str(format_date(date(year, number, 1), "MMM y", locale=request.state.language))


def _months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``), so an empty one shows as 0."""
    year, month = (int(part) for part in first.split("-"))
    months: list[str] = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def per_month(
    request: Request, vouchers: list[dict[str, Any]], claims: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Issuance (vouchers made, any status now) and claims (not voided, as the report
    counts them) by the UTC month they were made in."""
    issued: dict[str, list[int]] = {}
    claimed: dict[str, list[int]] = {}
    for voucher in vouchers:
        slot = issued.setdefault(str(voucher["created_at"])[:7], [0, 0])
        slot[0] += 1
        slot[1] += int(voucher["amount"])
    for claim in claims:
        if claim["status"] == "voided":
            continue
        slot = claimed.setdefault(str(claim["created_at"])[:7], [0, 0])
        slot[0] += 1
        slot[1] += int(claim["amount"])
    known = sorted(issued.keys() | claimed.keys())
    if not known:
        return []
    return [
        {
            "month": month,
            "label": _month_label(request, month),
            "vouchers": issued.get(month, [0, 0])[0],
            "issued": issued.get(month, [0, 0])[1],
            "claims": claimed.get(month, [0, 0])[0],
            "claimed": claimed.get(month, [0, 0])[1],
        }
        for month in _months_between(known[0], known[-1])
    ]


def women_led(request: Request, report: dict[str, Any]) -> dict[str, Any]:
    """The women-led share of issuance next to the reserve rule, with the words to say it."""
    share = report["women_led"]
    total = int(report["totals"]["amount_issued"] or 0)
    issued = int(share["amount_issued"])
    pct = int(share["reserve_pct"])
    fraction = Decimal(share["share_of_issuance"]) if share["share_of_issuance"] else None
    return {
        **share,
        "total_issued": total,
        "other_issued": total - issued,
        "share_words": percent(request, fraction) if fraction is not None else None,
        "reserve_words": percent(request, Decimal(pct) / 100),
        "meets_reserve": fraction is not None and fraction * 100 >= pct,
    }


async def _funder_name(me: Me, programme: dict[str, Any]) -> str | None:
    if programme["funder_id"] == me.account_id:
        return str(me.account["name"])
    try:
        funder = await me.api.get(f"/v1/accounts/{programme['funder_id']}")
    except ApiProblem:
        return None  # a manager or auditor may not read the funder's account
    return str(funder["name"])


async def _overview(
    request: Request, me: Me, programme_id: str, *, status: int = 200, **context: Any
) -> Response:
    programme = await me.api.get(f"/v1/programmes/{programme_id}")
    vouchers = await me.api.all_pages("/v1/vouchers", limit=500, programme_id=programme_id)
    claims = await me.api.all_pages("/v1/redemptions", limit=500, programme_id=programme_id)
    report = await me.api.get(f"/v1/programmes/{programme_id}/report")
    months = per_month(request, vouchers, claims)
    is_open = programme["status"] == "open"
    gettext = gettext_of(request)
    balances: dict[str, int] = programme["balances"]
    deposited = balances["deposited"]
    rows = [
        {
            "key": key,
            "label": gettext(label),
            "hint": gettext(hint),
            "amount": balances[key],
            "share": percent(request, Decimal(balances[key]) / deposited) if deposited else "—",
        }
        for key, label, hint in BALANCES
        if key != "deposited"
    ]
    shares = women_led(request, report)
    return page(
        request,
        me,
        "programmes/overview.html",
        programme=programme,
        tab="overview",
        funder_name=await _funder_name(me, programme),
        balances=balances,
        balance_rows=rows,
        segments=[(row["label"], row["amount"]) for row in rows],
        deposited_share=percent(request, Decimal(1)) if deposited else "—",
        months=months,
        month_labels=[row["label"] for row in months],
        month_series=[
            (gettext(N_("Issued")), [row["issued"] for row in months]),
            (gettext(N_("Claimed")), [row["claimed"] for row in months]),
        ],
        women_led=shares,
        women_led_rows=[
            (gettext(N_("Led by women")), shares["amount_issued"]),
            (gettext(N_("Other groups")), shares["other_issued"]),
        ],
        may_deposit=me.kind == "funder" and me.can_act and is_open,
        may_close=me.kind == "funder" and me.can_act and is_open,
        may_sweep=me.kind in ("funder", "manager") and me.can_act,
        amount_example="1250" if exponent(programme["currency"]) == 0 else "1250.50",
        deposit=context.pop("deposit", {}),
        errors=context.pop("errors", {}),
        **context,
        **_vocabulary(request),
        http_status=status,
    )


@router.get("/programmes/{programme_id}")
async def overview(request: Request, programme_id: str) -> Response:
    me = await _party(request)
    return await _overview(request, me, programme_id)


@router.post("/programmes/{programme_id}/deposit")
async def deposit(request: Request, programme_id: str) -> Response:
    """Money into the programme: an amount in major units and a reference, as
    ``POST /v1/programmes/{id}/deposits`` takes them (in minor units)."""
    me = await _party(request)
    form = await read_form(request, me)
    programme = await me.api.get(f"/v1/programmes/{programme_id}")
    values = {"amount": text(form, "amount"), "reference": text(form, "reference")}
    errors: dict[str, str] = {}
    amount: int | None = None
    try:
        amount = parse_amount(values["amount"], str(programme["currency"]))
    except AmountError as refused:
        errors["amount"] = refused.words(request)
    if not values["reference"]:
        errors["reference"] = gettext_of(request)(FIELD_ERRORS["reference"])
    if errors or amount is None:
        return await _overview(request, me, programme_id, status=422, errors=errors, deposit=values)
    try:
        await me.api.post(
            f"/v1/programmes/{programme_id}/deposits",
            {"amount": amount, "reference": values["reference"]},
            key=form_key(form),
        )
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await _overview(
            request,
            me,
            programme_id,
            status=refusal_status(problem),
            errors=field_words(request, problem),
            deposit=values,
            problem=problem,
        )
    return redirect(f"{BASE}/{programme_id}", notice="deposit_made")


@router.post("/programmes/{programme_id}/close")
async def close(request: Request, programme_id: str) -> Response:
    """Close the programme once the box saying so is ticked."""
    me = await _party(request)
    form = await read_form(request, me)
    if form.get("confirm") != "yes":
        words = gettext_of(request)(N_("Tick the box to say you mean to close the programme."))
        return await _overview(request, me, programme_id, status=422, errors={"confirm": words})
    try:
        await me.api.call(
            "POST", f"/v1/programmes/{programme_id}/close", idempotency_key=form_key(form)
        )
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await _overview(
            request, me, programme_id, status=refusal_status(problem), problem=problem
        )
    return redirect(f"{BASE}/{programme_id}", notice="programme_was_closed")


@router.post("/programmes/{programme_id}/sweep")
async def sweep(request: Request, programme_id: str) -> Response:
    """Expire vouchers past their date and release timed-out holds now."""
    me = await _party(request)
    form = await read_form(request, me)
    await me.api.call(
        "POST", f"/v1/programmes/{programme_id}/sweep", idempotency_key=form_key(form)
    )
    return redirect(f"{BASE}/{programme_id}", notice="programme_swept")
