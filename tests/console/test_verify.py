"""The page that verifies a jsonl export in the browser, driven without a browser:
who may open it, the trusted key it offers (the latest checkpoint's, as the API
gives it), and that nothing on it can post a file. The verdicts themselves are
checked in Chromium, against the Python verifier (test_verify_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.factories.console import console_client, console_sign_in
from tests.factories.programmes import issue
from tests.factories.redemptions import Cast, claim_programme, make_cast
from tests.factories.sessions import add_human
from voucherledger.core.settings import Settings

PAGE = "/console/verify"


@pytest.fixture
def cast_client(settings: Settings) -> Iterator[tuple[TestClient, Cast]]:
    with console_client(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast, 50_000)
        issue(client, cast.funder, programme["id"], cast.group.id, 5_000)
        yield client, cast


def _open_as(client: TestClient, account_id: str, email: str) -> str:
    add_human(client, account_id, "viewer", email=email)
    signed = console_sign_in(client, email)
    assert signed.status_code == 303, signed.text
    response = client.get(PAGE)
    assert response.status_code == 200, response.text
    return str(response.text)


def _key_field(html: str) -> str:
    found = re.search(r'<input id="f-public_key"[^>]*value="([^"]*)"', html)
    assert found, html
    return found[1]


@pytest.mark.parametrize("kind", ["funder", "auditor"])
def test_the_key_offered_is_the_latest_checkpoints(
    cast_client: tuple[TestClient, Cast], kind: str
) -> None:
    client, cast = cast_client
    party = getattr(cast, kind)
    html = _open_as(client, party.id, f"{kind}@verify.example")
    checkpoint = client.get("/v1/audit/checkpoint", headers=party.headers).json()
    assert _key_field(html) == checkpoint["public_key"]
    assert f"block {checkpoint['height']}" in html


def test_a_manager_may_use_it_but_types_the_key(cast_client: tuple[TestClient, Cast]) -> None:
    client, cast = cast_client
    assert client.get("/v1/audit/checkpoint", headers=cast.manager.headers).status_code == 403
    html = _open_as(client, cast.manager.id, "manager@verify.example")
    assert _key_field(html) == ""
    assert "ask a funder or an auditor" in html


@pytest.mark.parametrize("kind", ["group", "supplier"])
def test_other_parties_get_the_not_found_page(
    cast_client: tuple[TestClient, Cast], kind: str
) -> None:
    client, cast = cast_client
    party = getattr(cast, kind)
    add_human(client, party.id, "owner", email=f"{kind}@verify.example")
    assert console_sign_in(client, f"{kind}@verify.example").status_code == 303
    assert client.get(PAGE).status_code == 404


def test_nothing_on_the_page_posts_the_file(cast_client: tuple[TestClient, Cast]) -> None:
    client, cast = cast_client
    html = _open_as(client, cast.auditor.id, "auditor@verify.example")
    main = html[html.index("<main") :]
    assert "<form" not in main  # no form: the file never leaves the browser
    assert re.search(r'<button type="button" id="verify-button">', main)
    file_input = re.search(r'<input id="f-export" type="file"[^>]*>', main)
    assert file_input
    assert "name=" not in file_input[0]  # not even a form field
    # The script is a static file (the CSP allows no inline script).
    assert re.search(r'<script src="/static/console/verify\.js\?v=[0-9a-f]{12}" defer>', html)
    assert "<script>" not in html
    # Without JavaScript the page says so and names the offline command.
    assert "<noscript>" in main
    assert "voucherledger verify FILE.jsonl --public-key KEY" in main
    assert client.get("/static/console/verify.js").status_code == 200


def test_signed_out_goes_to_sign_in(settings: Settings) -> None:
    with console_client(settings) as client:
        response = client.get(PAGE, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/signin?next=/console/verify"
