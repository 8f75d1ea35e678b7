"""The books through the console, without a browser: the journal's filters narrow the
list as the API's do, a transaction's postings are the API's and sum to zero, balances
and the trial balance show the API's figures, an export downloads the API's bytes, and
groups and suppliers (and managers, for exports) get the not-found page."""

from __future__ import annotations

import asyncio
import html as htmllib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.factories.console import console_client, console_sign_in
from tests.factories.people import accept, invite
from tests.factories.programmes import issue
from tests.factories.redemptions import Cast, claim, claim_programme, decide, make_cast
from voucherledger import chart
from voucherledger.console import books
from voucherledger.console.client import Api, ApiProblem
from voucherledger.console.templating import environment
from voucherledger.core.auth import CSRF_HEADER
from voucherledger.core.settings import Settings

money = environment("en").filters["money"]
_TXN_LINK = re.compile(r'href="/console/journal/(txn_[0-9A-Z]+)"')


@dataclass
class Books:
    client: TestClient
    cast: Cast
    programme: dict[str, Any]
    voucher: dict[str, Any]
    before_claim: datetime

    def sign_in(self, account_id: str, name: str = "Ada Auditor") -> dict[str, Any]:
        self.client.cookies.clear()
        invited = invite(self.client, self.cast.admin, account_id, "owner", name=name)
        assert accept(self.client, invited["invite_token"]).status_code == 200
        assert console_sign_in(self.client, invited["email"]).status_code == 303
        return invited

    def api(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, headers=self.cast.auditor.headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def journal_ids(self, **params: Any) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            got = self.api("/v1/ledger/transactions", limit=500, cursor=cursor, **params)
            found.extend(t["id"] for t in got["data"])
            cursor = got["next_cursor"]
            if not cursor:
                return found


@pytest.fixture
def story(settings: Settings) -> Iterator[Books]:
    with console_client(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast, 90_000, accredit_for=(cast.supplier,))
        voucher = issue(client, cast.funder, programme["id"], cast.group.id, 20_000)
        time.sleep(0.01)
        before = datetime.now(UTC)
        time.sleep(0.01)
        for amount in (3_000, 1_250):
            claim(client, cast.supplier, voucher["code"], amount)
        pending = client.get("/v1/redemptions?status=pending", headers=cast.group.headers)
        assert decide(client, cast.group, pending.json()["data"][0]["id"], "confirm").status_code
        found = Books(client, cast, programme, voucher, before)
        found.sign_in(cast.auditor.id)
        yield found


def listed(html: str) -> list[str]:
    """The transaction ids a journal page lists, in order."""
    return _TXN_LINK.findall(html)


def test_the_journal_lists_what_the_api_lists_and_its_filters_narrow_it(story: Books) -> None:
    everything = story.journal_ids()
    page = story.client.get("/console/journal")
    assert page.status_code == 200
    assert listed(page.text) == everything
    assert len(everything) == 5  # deposit, issue, two holds, a capture

    account = chart.voucher(story.voucher["id"])
    by_account = story.client.get("/console/journal", params={"account": account}).text
    assert listed(by_account) == story.journal_ids(account=account) != everything

    programme = story.programme["id"]
    assert listed(
        story.client.get("/console/journal", params={"programme_id": programme}).text
    ) == story.journal_ids(programme_id=programme)

    holds = story.client.get("/console/journal", params={"kind": "hold"}).text
    api_holds = [
        t["id"] for t in story.api("/v1/ledger/transactions")["data"] if t["kind"] == "hold"
    ]
    assert listed(holds) == api_holds
    assert len(api_holds) == 2

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert listed(story.client.get("/console/journal", params={"from": tomorrow}).text) == []
    today = datetime.now(UTC).date().isoformat()
    assert listed(
        story.client.get("/console/journal", params={"from": today, "to": today}).text
    ) == story.journal_ids(since=f"{today}T00:00:00Z", until=f"{today}T23:59:59.999999Z")


def test_a_bad_date_or_an_unknown_programme_is_said_not_sent(story: Books) -> None:
    bad = story.client.get("/console/journal", params={"from": "30/11/2026"})
    assert bad.status_code == 422
    assert "Give a date such as 2026-11-30 (UTC)." in bad.text
    foreign = story.client.get("/console/journal", params={"programme_id": "prg_nope"})
    assert foreign.status_code == 404
    assert listed(foreign.text) == []
    assert 'role="alert"' in foreign.text


def test_the_journal_pages_newer_and_older_with_the_apis_cursor(
    story: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(books, "PER_PAGE", 2)
    everything = story.journal_ids()
    seen: list[list[str]] = []
    url = "/console/journal"
    while True:
        html = story.client.get(url).text
        seen.append(listed(html))
        newer = re.search(r'href="(/console/journal\?[^"]*)" rel="next"', html)
        if newer is None:
            break
        url = htmllib.unescape(newer.group(1))
    assert seen == [everything[0:2], everything[2:4], everything[4:5]]
    older = re.search(r'href="(/console/journal\?[^"]*)" rel="prev"', html)
    assert older is not None
    back = story.client.get(htmllib.unescape(older.group(1))).text
    assert listed(back) == everything[2:4]
    again = re.search(r'href="(/console/journal\?[^"]*)" rel="prev"', back)
    assert again is not None
    assert listed(story.client.get(htmllib.unescape(again.group(1))).text) == everything[0:2]


def test_a_transactions_postings_are_the_apis_and_sum_to_zero(story: Books) -> None:
    capture = next(
        t for t in story.api("/v1/ledger/transactions")["data"] if t["kind"] == "capture"
    )
    page = story.client.get(f"/console/journal/{capture['id']}")
    assert page.status_code == 200
    body = page.text[page.text.index("<tbody>") : page.text.index("</tbody>")]
    rows = re.findall(
        r'<code>([^<]+)</code></a></td>\s*<td data-label="Amount" class="num">([^<]+)</td>', body
    )
    assert rows == [(p["account"], money(p["amount"], p["currency"])) for p in capture["postings"]]
    assert sum(p["amount"] for p in capture["postings"]) == 0
    assert "Sum in EUR" in page.text
    assert "balanced" in page.text
    assert "not balanced" not in page.text
    for leg in capture["postings"]:
        assert f'href="/console/balances?account={leg["account"].replace(":", "%3A")}"' in page.text


def test_another_programmes_transaction_is_not_found(story: Books) -> None:
    other = claim_programme(story.client, story.cast, 5_000, auditor_ids=[])
    theirs = story.client.get(
        "/v1/ledger/transactions",
        headers=story.cast.funder.headers,
        params={"programme_id": other["id"]},
    ).json()["data"][0]["id"]
    assert story.client.get(f"/console/journal/{theirs}").status_code == 404
    assert theirs not in story.client.get("/console/journal").text


def test_the_person_who_made_a_transaction_is_named_to_their_owner(story: Books) -> None:
    story.sign_in(story.cast.funder.id, name="Fola Funder")
    me = story.client.get("/v1/me").json()
    made = story.client.post(
        f"/v1/programmes/{story.programme['id']}/deposits",
        headers={CSRF_HEADER: me["session"]["csrf_token"]},
        json={"amount": 500, "reference": "top-up"},
    )
    assert made.status_code == 201, made.text
    html = story.client.get("/console/journal", params={"kind": "deposit"}).text
    assert "Fola Funder" in html
    deposit_id = listed(html)[-1]
    page = story.client.get(f"/console/journal/{deposit_id}").text
    assert "Fola Funder" in page
    assert me["member"]["id"] in page


def test_balances_now_and_at_an_instant_are_the_apis(story: Books) -> None:
    account = chart.voucher(story.voucher["id"])
    instant = story.before_claim.strftime("%Y-%m-%dT%H:%M:%S.%f")
    page = story.client.get("/console/balances", params={"account": account, "as_of": instant})
    assert page.status_code == 200
    path = f"/v1/ledger/accounts/{account}/balance"
    now = story.api(path)
    then = story.api(path, as_of=instant + "Z")
    assert then["balance"] == 20_000 != now["balance"]
    assert money(now["balance"], "EUR") in page.text
    assert money(then["balance"], "EUR") in page.text
    unknown = story.client.get("/console/balances", params={"account": "voucher:vch_nope"})
    assert unknown.status_code == 404
    assert "Balance now" not in unknown.text


def test_the_trial_balance_is_the_apis_and_sums_to_zero(story: Books) -> None:
    programme = story.programme["id"]
    page = story.client.get("/console/trial-balance", params={"programme_id": programme})
    assert page.status_code == 200
    trial = story.api("/v1/ledger/trial-balance", programme_id=programme)
    assert trial["totals"] == {"EUR": 0}
    body = page.text[page.text.index("<tbody>") : page.text.index("</tbody>")]
    rows = re.findall(r"<code>([^<]+)</code></a></td>.*?class=\"num\">([^<]+)</td>", body, re.S)
    assert rows == [(a["account"], money(a["balance"], a["currency"])) for a in trial["accounts"]]
    assert "Sum in EUR · balanced" in page.text
    # Only one programme: it is chosen without asking.
    assert story.client.get("/console/trial-balance").text.count("Sum in EUR") == 1


def _api_export(story: Books, **params: Any) -> Any:
    response = story.client.get(
        "/v1/audit/export", headers=story.cast.auditor.headers, params=params
    )
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_an_export_downloads_the_apis_bytes(story: Books, kind: str) -> None:
    programme = story.programme["id"]
    got = story.client.get(
        "/console/exports/download", params={"format": kind, "programme_id": programme}
    )
    assert got.status_code == 200, got.text
    api = _api_export(story, format=kind, programme_id=programme)
    assert got.headers["content-type"] == api.headers["content-type"]
    assert got.headers["content-disposition"] == api.headers["content-disposition"]
    # The signed manifest at the end says when it was exported: the rest is the same.
    assert got.content.splitlines()[:-1] == api.content.splitlines()[:-1]
    assert len(got.content.splitlines()) > 5


def test_a_standard_export_and_a_period_are_passed_on(story: Books) -> None:
    today = datetime.now(UTC).date().isoformat()
    got = story.client.get(
        "/console/exports/download",
        params={"format": "360giving", "programme_id": story.programme["id"], "from": today},
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/json")
    assert "attachment" in got.headers["content-disposition"]
    assert (
        story.client.get("/console/exports/download", params={"format": "xlsx"}).status_code == 404
    )
    foreign = story.client.get(
        "/console/exports/download", params={"format": "csv", "programme_id": "prg_nope"}
    )
    assert foreign.status_code == 404
    assert "There is nothing here, or it is not yours to see." in foreign.text


def test_the_checkpoint_is_shown_with_its_key_and_downloads_as_the_api_gives_it(
    story: Books,
) -> None:
    page = story.client.get("/console/exports")
    assert page.status_code == 200
    point = story.api("/v1/audit/checkpoint")
    assert point["public_key"] in page.text
    assert point["hash"] in page.text
    assert "voucherledger verify journal.jsonl --checkpoint checkpoint.json" in page.text
    got = story.client.get("/console/exports/checkpoint.json")
    assert got.status_code == 200
    assert json.loads(got.content) == point
    assert got.headers["content-disposition"] == 'attachment; filename="checkpoint.json"'


def test_groups_suppliers_and_managers_get_not_found(story: Books) -> None:
    pages = [
        "/console/journal",
        "/console/balances",
        "/console/trial-balance",
        "/console/exports",
        "/console/exports/download?format=jsonl",
        "/console/exports/checkpoint.json",
    ]
    for account in (story.cast.group.id, story.cast.supplier.id):
        story.sign_in(account, name="Someone")
        for path in pages:
            assert story.client.get(path).status_code == 404, (account, path)
    story.sign_in(story.cast.manager.id, name="Mo Manager")
    assert story.client.get("/console/journal").status_code == 200
    for path in pages[3:]:
        assert story.client.get(path).status_code == 404, path


def _streaming_app() -> tuple[Starlette, asyncio.Event]:
    released = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first\n"
        await released.wait()
        yield b"second\n"

    async def file(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/plain")

    async def missing(request: Request) -> Response:
        return JSONResponse({"code": "not_found", "detail": "No such file."}, status_code=404)

    return Starlette(routes=[Route("/file", file), Route("/missing", missing)]), released


def test_a_stream_hands_on_each_chunk_as_the_api_sends_it() -> None:
    async def scenario() -> None:
        app, released = _streaming_app()
        scope = {"type": "http", "app": app, "headers": [], "client": ("127.0.0.1", 9)}
        api = Api(Request(scope), token="vl-test")
        answer = await api.stream("/file")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/plain")
        # The first chunk arrives while the app still waits to send the second.
        assert await anext(answer.body) == b"first\n"
        released.set()
        assert [chunk async for chunk in answer.body] == [b"second\n"]
        with pytest.raises(ApiProblem) as refused:
            await api.stream("/missing")
        assert (refused.value.status, refused.value.code) == (404, "not_found")

    asyncio.run(scenario())
