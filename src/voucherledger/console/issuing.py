"""A programme's vouchers for funders and fund managers: filter and search, issue one
(the group picked from the directory, its eligibility shown first), issue many from a
CSV upload (a preview of every row against the rules, then one all-or-nothing batch),
and revoke with a reason. Auditors read the list and a voucher's page.

The upload is read in two steps. The preview parses the file (the console's own
checks: a known group, an amount the currency can hold, known categories, a date)
and sends the rows that parse to ``POST /v1/programmes/{id}/vouchers/batch/check``,
the API's dry run of the batch: every bad row is listed with its CSV line and its
reason, and nothing is written. A clean file's rows go to the confirm form as one
hidden field (normalised, with their line numbers); "Issue all" parses that field
again and posts the batch under the form's idempotency key. The API checks every
rule again, so a tampered field or a budget spent meanwhile is refused as a whole,
and the preview is shown again with the API's reasons.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.admin import GROUP_TYPE_NAMES, countries
from voucherledger.console.client import ApiProblem
from voucherledger.console.messages import N_
from voucherledger.console.programmes import programme_of
from voucherledger.console.supplier import AmountError, parse_amount
from voucherledger.console.templating import gettext_of
from voucherledger.console.web import (
    Me,
    console_router,
    end_of_day,
    files,
    form_key,
    page,
    read_form,
    redirect,
    refusal_status,
    signed_in,
    text,
)
from voucherledger.reference import SERVICE_CATEGORIES

router = console_router()

READERS = ("funder", "manager", "auditor")
ISSUERS = ("funder", "manager")
STATUSES = ("active", "exhausted", "expired", "revoked")
MAX_ROWS = 10_000  # the API's largest batch
MAX_UPLOAD_BYTES = 512 * 1024  # 10,000 short rows; the confirm form stays under 1 MiB
PER_PAGE = 50  # rows of the list a page
TEMPLATE_CSV = (
    "group,amount,categories,expires_at\r\n"
    "Kumasi Hometown Association,250.00,leadership governance,2027-06-30\r\n"
    "acc_01JD6X7R2W8Y4C3K9M5P0QXYZT,100,,\r\n"
)

# The API's refusal of one row of a batch, in words; its own detail follows.
REASON_WORDS = N_("Give the reason: the group and the auditors see it.")
STALE_WORDS = N_("The preview is out of date: upload the file again.")
DATE_WORDS = N_("Write the date as YYYY-MM-DD, such as 2027-03-31.")
ROW_PROBLEMS: dict[str, str] = {
    "group_not_eligible": N_("The group is not eligible: its type or origin is outside the rules."),
    "limit_exceeded": N_("Over a limit of the programme: per voucher or per group in all."),
    "category_not_allowed": N_("The programme does not fund a category of this row."),
    "insufficient_funds": N_("The budget left does not cover this voucher with the rows before."),
    "validation_error": N_("A value is not accepted: the group or the expiry date."),
    "programme_closed": N_("This programme is closed."),
}


def _(request: Request, message: str, **values: Any) -> str:
    words: str = gettext_of(request)(message)
    return words % values if values else words


async def _party(request: Request, *, issuer: bool = False) -> Me:
    """The person, of a funder or manager (or, for reading, an auditor); the API
    decides whether the programme is theirs (else the not-found page)."""
    return await signed_in(request, kind=ISSUERS if issuer else READERS)


async def _groups(me: Me) -> list[dict[str, Any]]:
    """The directory's groups (funders and managers may read it; auditors may not)."""
    if me.kind not in ISSUERS:
        return []
    groups: list[dict[str, Any]] = await me.api.all_pages("/v1/accounts", kind="group")
    return sorted(groups, key=lambda g: (str(g["name"]).casefold(), g["id"]))


def _base(programme_id: str) -> str:
    return f"/console/programmes/{programme_id}/vouchers"


# --- the list ---------------------------------------------------------------------------


@router.get("/programmes/{programme_id}/vouchers")
async def vouchers(request: Request, programme_id: str) -> Response:
    me = await _party(request)
    programme = await programme_of(me, programme_id)
    status = request.query_params.get("status") or None
    if status not in STATUSES:
        status = None
    group_id = request.query_params.get("group") or None
    search = (request.query_params.get("q") or "").strip()
    groups = await _groups(me)
    names = {g["id"]: g["name"] for g in groups}
    if group_id is not None and groups and group_id not in names:
        group_id = None
    listed = await me.api.all_pages(
        "/v1/vouchers", limit=500, programme_id=programme_id, group_id=group_id, status=status
    )
    if search:
        needle = search.casefold()
        compact = re.sub(r"[\s-]", "", needle)
        listed = [
            v
            for v in listed
            if (compact and v.get("code") and compact in str(v["code"]).replace("-", "").casefold())
            or needle in str(names.get(v["group_id"], "")).casefold()
            or needle == str(v["id"]).casefold()
            or needle == str(v["group_id"]).casefold()
        ]
    listed.reverse()  # the newest first
    totals = {
        "count": len(listed),
        "amount": sum(v["amount"] for v in listed),
        "balance": sum(v["balance"] for v in listed),
        "held": sum(v["held"] for v in listed),
    }
    pages = max(1, -(-len(listed) // PER_PAGE))
    try:
        number = min(max(1, int(request.query_params.get("page") or 1)), pages)
    except ValueError:
        number = 1
    query = {k: v for k, v in (("status", status), ("group", group_id), ("q", search)) if v}
    return page(
        request,
        me,
        "programmes/vouchers.html",
        programme=programme,
        tab="vouchers",
        vouchers=listed[(number - 1) * PER_PAGE : number * PER_PAGE],
        page_number=number,
        pages=pages,
        query=query,
        totals=totals,
        groups=groups,
        group_names=names,
        status=status,
        group_id=group_id,
        search=search,
        statuses=STATUSES,
    )


@router.get("/programmes/{programme_id}/vouchers/template.csv")
async def template_csv(request: Request, programme_id: str) -> Response:
    await _party(request, issuer=True)
    return Response(
        TEMPLATE_CSV,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vouchers-template.csv"'},
    )


# --- issue one --------------------------------------------------------------------------


def _one_item(
    request: Request, form: FormData, currency: str, categories: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's item for the form, and the console's own field errors."""
    errors: dict[str, str] = {}
    item: dict[str, Any] = {"group_id": text(form, "group_id")}
    if not item["group_id"]:
        errors["group_id"] = _(request, N_("Choose the group."))
    try:
        item["amount"] = parse_amount(text(form, "amount"), currency)
    except AmountError as exc:
        errors["amount"] = exc.words(request)
    chosen = [str(c) for c in form.getlist("service_categories") if str(c) in categories]
    if chosen:
        item["service_categories"] = chosen
    typed = text(form, "expires_on")
    if typed:
        try:
            item["expires_at"] = end_of_day(typed)
        except ValueError:
            errors["expires_on"] = _(request, DATE_WORDS)
    return item, errors


async def _eligibility(
    me: Me, programme: dict[str, Any], group: dict[str, Any] | None, item: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What the rules say about the group (and, with an item, the API's check of it)."""
    if group is None:
        return None
    issued = sum(
        v["amount"]
        for v in await me.api.all_pages(
            "/v1/vouchers", limit=500, programme_id=programme["id"], group_id=group["id"]
        )
    )
    rules = programme["rules"]
    profile = group.get("group") or {}
    checked = None
    if item is not None and "amount" in item:
        try:
            checked = await me.api.post(
                f"/v1/programmes/{programme['id']}/vouchers/batch/check", {"vouchers": [item]}
            )
        except ApiProblem as problem:
            checked = {"valid": False, "errors": [{"code": problem.code, "detail": problem.detail}]}
    types = rules.get("eligible_group_types")
    origins = rules.get("eligible_origin_countries")
    return {
        "group": group,
        "profile": profile,
        "type_ok": types is None or profile.get("group_type") in types,
        "origin_ok": origins is None or profile.get("origin_country") in origins,
        "issued": issued,
        "cap": rules.get("max_total_per_group"),
        "max_amount": rules.get("max_voucher_amount"),
        "reserve": programme["balances"].get("unissued_women_led_reserve", 0),
        "checked": checked,
    }


async def _issue_page(
    request: Request,
    me: Me,
    programme: dict[str, Any],
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    item: dict[str, Any] | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    groups = await _groups(me)
    by_id = {g["id"]: g for g in groups}
    eligibility = await _eligibility(me, programme, by_id.get(values.get("group_id", "")), item)
    return page(
        request,
        me,
        "programmes/voucher_new.html",
        programme=programme,
        tab="vouchers",
        groups=groups,
        values=values,
        errors=errors or {},
        eligibility=eligibility,
        row_problems=ROW_PROBLEMS,
        group_types=GROUP_TYPE_NAMES,
        country_names=dict(countries(request.state.language)),
        **context,
        http_status=status,
    )


@router.get("/programmes/{programme_id}/vouchers/new")
async def new_voucher(request: Request, programme_id: str) -> Response:
    me = await _party(request, issuer=True)
    programme = await programme_of(me, programme_id)
    values = {"group_id": request.query_params.get("group", ""), "service_categories": []}
    return await _issue_page(request, me, programme, values=values)


@router.post("/programmes/{programme_id}/vouchers/new")
async def issue_one(request: Request, programme_id: str) -> Response:
    """ "Check" runs the batch check with this one item and shows the page again, the
    form's key kept; "Issue" issues it under that key."""
    me = await _party(request, issuer=True)
    form = await read_form(request, me)
    programme = await programme_of(me, programme_id)
    item, errors = _one_item(request, form, programme["currency"], programme["service_categories"])
    values = {
        "group_id": text(form, "group_id"),
        "amount": text(form, "amount"),
        "expires_on": text(form, "expires_on"),
        "service_categories": [str(c) for c in form.getlist("service_categories")],
    }
    key = form_key(form)
    if errors or text(form, "action") == "check":
        return await _issue_page(
            request,
            me,
            programme,
            values=values,
            errors=errors,
            item=None if errors else item,
            status=422 if errors else 200,
            form_key=key,
            checked_now=not errors,
        )
    try:
        made = await me.api.post(f"/v1/programmes/{programme_id}/vouchers", item, key=key)
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _issue_page(
            request,
            me,
            programme,
            values=values,
            errors=problem.field_errors(),
            item=item,
            status=refusal_status(problem),
            problem=problem,
            form_key=key,
        )
    return redirect(f"{_base(programme_id)}/{made['id']}", notice="voucher_issued")


# --- issue many: the CSV ----------------------------------------------------------------


@dataclass
class Row:
    """One CSV row, normalised: what the batch item will be."""

    line: int
    group_id: str
    amount: int
    categories: list[str]
    expires_on: str  # YYYY-MM-DD or ""

    def item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"group_id": self.group_id, "amount": self.amount}
        if self.categories:
            item["service_categories"] = self.categories
        if self.expires_on:
            item["expires_at"] = end_of_day(self.expires_on)
        return item

    def packed(self) -> list[Any]:
        return [self.line, self.group_id, self.amount, " ".join(self.categories), self.expires_on]


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail
    problem: str | None = None  # the whole file's, when it cannot be read at all

    def sort(self) -> None:
        self.bad.sort(key=lambda b: b[0])


_HEADERS = {
    "group": "group",
    "group_id": "group",
    "amount": "amount",
    "categories": "categories",
    "service_categories": "categories",
    "expires_at": "expires_at",
    "expires": "expires_at",
    "expires_on": "expires_at",
}


def _decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM a spreadsheet writes), else Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_csv(
    request: Request, data: bytes, groups: list[dict[str, Any]], currency: str, allowed: list[str]
) -> Parsed:
    """The console's own checks of every row; the rules are the API's to check."""
    out = Parsed()
    if len(data) > MAX_UPLOAD_BYTES:
        out.problem = _(
            request,
            N_("The file is larger than %(kib)s KiB: split it into several files."),
            kib=MAX_UPLOAD_BYTES // 1024,
        )
        return out
    body = _decode(data)
    first = body.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        out.problem = _(request, N_("The file is empty."))
        return out
    columns = {_HEADERS.get(h.strip().casefold()): i for i, h in enumerate(header)}
    if "group" not in columns or "amount" not in columns:
        out.problem = _(
            request,
            N_("The first line must name the columns: group, amount, categories, expires_at."),
        )
        return out
    by_id = {g["id"]: g for g in groups}
    names = Counter(str(g["name"]).strip() for g in groups)
    by_name = {str(g["name"]).strip(): g for g in groups}
    count = 0
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            count += 1
            if count > MAX_ROWS:
                out.problem = _(
                    request,
                    N_("The file has more than %(max)s vouchers: split it into several files."),
                    max=MAX_ROWS,
                )
                return out
            _parse_row(request, out, line, cells, columns, by_id, by_name, names, currency, allowed)
    except csv.Error:
        out.problem = _(
            request,
            N_("Line %(line)s cannot be read as CSV: check its quotes."),
            line=reader.line_num,
        )
        return out
    if count == 0:
        out.problem = _(request, N_("The file has no vouchers, only the line of column names."))
    return out


def _cell(cells: list[str], columns: dict[str | None, int], name: str) -> str:
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _parse_row(
    request: Request,
    out: Parsed,
    line: int,
    cells: list[str],
    columns: dict[str | None, int],
    by_id: dict[str, dict[str, Any]],
    by_name: dict[str, dict[str, Any]],
    names: Counter[str],
    currency: str,
    allowed: list[str],
) -> None:
    reasons: list[tuple[str, str]] = []
    typed_group = _cell(cells, columns, "group")
    group_id = ""
    if not typed_group:
        reasons.append((_(request, N_("The group is missing.")), ""))
    elif typed_group in by_id:
        group_id = typed_group
    elif names.get(typed_group, 0) > 1:
        reasons.append(
            (_(request, N_("Several groups have this name: give the group's id.")), typed_group)
        )
    elif typed_group in by_name:
        group_id = str(by_name[typed_group]["id"])
    else:
        reasons.append((_(request, N_("No group has this id or name.")), typed_group))
    amount = 0
    try:
        amount = parse_amount(_cell(cells, columns, "amount"), currency)
    except AmountError as exc:
        reasons.append((exc.words(request), _cell(cells, columns, "amount")))
    categories: list[str] = []
    for word in re.split(r"[\s;,]+", _cell(cells, columns, "categories").casefold()):
        if not word:
            continue
        if word not in SERVICE_CATEGORIES:
            reasons.append((_(request, N_("This is not a category.")), word))
        elif word not in allowed:
            reasons.append((_(request, N_("The programme does not fund this category.")), word))
        elif word not in categories:
            categories.append(word)
    expires_on = _cell(cells, columns, "expires_at")
    if expires_on:
        try:
            end_of_day(expires_on)
        except ValueError:
            reasons.append((_(request, DATE_WORDS), expires_on))
    if reasons:
        out.bad.extend((line, reason, detail) for reason, detail in reasons)
        return
    out.rows.append(Row(line, group_id, amount, categories, expires_on))


def unpack(request: Request, form: FormData) -> list[Row] | None:
    """The confirm form's rows, read as strictly as the file was: anything else is a
    form that was not ours (the API checks the rules again in any case)."""
    try:
        packed = json.loads(text(form, "rows"))
    except ValueError:
        return None
    if not isinstance(packed, list) or not 0 < len(packed) <= MAX_ROWS:
        return None
    rows: list[Row] = []
    for entry in packed:
        if not (
            isinstance(entry, list)
            and len(entry) == 5
            and isinstance(entry[0], int)
            and isinstance(entry[1], str)
            and isinstance(entry[2], int)
            and not isinstance(entry[2], bool)
            and isinstance(entry[3], str)
            and isinstance(entry[4], str)
        ):
            return None
        line, group_id, amount, categories, expires_on = entry
        if expires_on:
            try:
                end_of_day(expires_on)
            except ValueError:
                return None
        rows.append(Row(line, group_id, amount, categories.split(), expires_on))
    return rows


def _api_errors(
    request: Request, rows: list[Row], errors: list[dict[str, Any]]
) -> list[tuple[int, str, str]]:
    """The API's ``{index, code, detail}`` of the batch, at their CSV lines, in words."""
    bad: list[tuple[int, str, str]] = []
    for error in errors:
        index = error.get("index")
        if not isinstance(index, int) or not 0 <= index < len(rows):
            continue
        code = str(error.get("code"))
        words = _(request, ROW_PROBLEMS[code]) if code in ROW_PROBLEMS else str(error.get("detail"))
        bad.append((rows[index].line, words, str(error.get("detail") or "")))
    return bad


async def _preview_page(
    request: Request,
    me: Me,
    programme: dict[str, Any],
    parsed: Parsed,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    parsed.sort()
    bad_lines = sorted({b[0] for b in parsed.bad})
    passing = [r for r in parsed.rows if r.line not in set(bad_lines)]
    return page(
        request,
        me,
        "programmes/vouchers_upload.html",
        programme=programme,
        tab="vouchers",
        parsed=parsed,
        preview=True,
        bad_lines=bad_lines,
        passing=len(passing),
        total=sum(r.amount for r in passing),
        groups_count=len({r.group_id for r in passing}),
        packed=json.dumps([r.packed() for r in parsed.rows], separators=(",", ":")),
        max_rows=MAX_ROWS,
        max_kib=MAX_UPLOAD_BYTES // 1024,
        **context,
        http_status=status,
    )


@router.get("/programmes/{programme_id}/vouchers/upload")
async def upload_form(request: Request, programme_id: str) -> Response:
    me = await _party(request, issuer=True)
    programme = await programme_of(me, programme_id)
    return page(
        request,
        me,
        "programmes/vouchers_upload.html",
        programme=programme,
        tab="vouchers",
        preview=False,
        max_rows=MAX_ROWS,
        max_kib=MAX_UPLOAD_BYTES // 1024,
    )


@router.post("/programmes/{programme_id}/vouchers/upload")
async def upload(request: Request, programme_id: str) -> Response:
    """The preview: the file's rows checked by the console, then by the API's dry run."""
    me = await _party(request, issuer=True)
    form = await read_form(request, me)
    programme = await programme_of(me, programme_id)
    chosen: list[UploadFile] = files(form, "file")
    if not chosen:
        parsed = Parsed(problem=_(request, N_("Choose the CSV file to upload.")))
        return await _preview_page(request, me, programme, parsed, status=422)
    data = await chosen[0].read(MAX_UPLOAD_BYTES + 1)
    groups = await _groups(me)
    parsed = parse_csv(
        request, data, groups, programme["currency"], programme["service_categories"]
    )
    if parsed.problem is None and parsed.rows:
        checked = await me.api.post(
            f"/v1/programmes/{programme_id}/vouchers/batch/check",
            {"vouchers": [r.item() for r in parsed.rows]},
        )
        parsed.bad.extend(_api_errors(request, parsed.rows, checked["errors"]))
    bad = parsed.problem is not None or bool(parsed.bad)
    return await _preview_page(request, me, programme, parsed, status=422 if bad else 200)


@router.post("/programmes/{programme_id}/vouchers/batch")
async def issue_batch(request: Request, programme_id: str) -> Response:
    """ "Issue all": the rows of the preview, issued as one batch under the form's key."""
    me = await _party(request, issuer=True)
    form = await read_form(request, me)
    programme = await programme_of(me, programme_id)
    rows = unpack(request, form)
    if rows is None:
        parsed = Parsed(
            problem=_(request, N_("The preview is out of date: upload the file again."))
        )
        return await _preview_page(request, me, programme, parsed, status=400)
    key = form_key(form)
    try:
        made = await me.api.post(
            f"/v1/programmes/{programme_id}/vouchers/batch",
            {"vouchers": [r.item() for r in rows]},
            key=key,
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        parsed = Parsed(rows=rows)
        if problem.errors and all("index" in e for e in problem.errors):
            parsed.bad = _api_errors(request, rows, problem.errors)
        else:
            parsed.problem = problem.detail
        return await _preview_page(
            request, me, programme, parsed, status=refusal_status(problem), refused=True
        )
    return redirect(f"{_base(programme_id)}?issued={len(made['data'])}", notice="vouchers_issued")


# --- one voucher (after the fixed paths: "new" and "upload" are no ids) ---------


async def _voucher_page(
    request: Request,
    me: Me,
    programme_id: str,
    voucher_id: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    programme = await programme_of(me, programme_id)
    voucher = await me.api.get(f"/v1/vouchers/{voucher_id}")
    if voucher["programme_id"] != programme_id:
        raise ApiProblem(404, "not_found", "")
    statement = await me.api.all_pages(f"/v1/vouchers/{voucher_id}/statement", limit=500)
    group_name = None
    if me.kind in ISSUERS:
        try:
            group_name = (await me.api.get(f"/v1/accounts/{voucher['group_id']}"))["name"]
        except ApiProblem:
            group_name = None
    return page(
        request,
        me,
        "programmes/voucher.html",
        programme=programme,
        tab="vouchers",
        voucher=voucher,
        group_name=group_name,
        statement=statement,
        errors=context.pop("errors", {}),
        values=context.pop("values", {}),
        **context,
        http_status=status,
    )


@router.get("/programmes/{programme_id}/vouchers/{voucher_id}")
async def voucher(request: Request, programme_id: str, voucher_id: str) -> Response:
    me = await _party(request)
    return await _voucher_page(request, me, programme_id, voucher_id)


@router.post("/programmes/{programme_id}/vouchers/{voucher_id}/revoke")
async def revoke(request: Request, programme_id: str, voucher_id: str) -> Response:
    me = await _party(request, issuer=True)
    form = await read_form(request, me)
    reason = text(form, "reason")
    if not reason:
        return await _voucher_page(
            request,
            me,
            programme_id,
            voucher_id,
            status=422,
            errors={
                "reason": _(request, N_("Give the reason: the group and the auditors see it."))
            },
        )
    found = await me.api.get(f"/v1/vouchers/{voucher_id}")
    if found["programme_id"] != programme_id:
        raise ApiProblem(404, "not_found", "")
    try:
        await me.api.call(
            "POST",
            f"/v1/vouchers/{voucher_id}/revoke",
            body={"reason": reason},
            idempotency_key=form_key(form),
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _voucher_page(
            request,
            me,
            programme_id,
            voucher_id,
            status=refusal_status(problem),
            problem=problem,
            errors=problem.field_errors(),
            values={"reason": reason},
        )
    return redirect(f"{_base(programme_id)}/{voucher_id}", notice="voucher_revoked")
