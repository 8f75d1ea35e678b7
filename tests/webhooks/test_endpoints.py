"""``/v1/webhook-endpoints``: CRUD of an account's own endpoints, the URL rules (https,
public addresses, no userinfo, length) with their codes, and 404 for others'."""

from __future__ import annotations

import base64

import httpx
from standardwebhooks import Webhook

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import assert_problem
from voucherledger.core.settings import Settings

BASE = "/v1/webhook-endpoints"


def test_an_account_creates_reads_updates_and_deletes_its_endpoint(settings: Settings) -> None:
    insecure = settings.model_copy(update={"webhook_allow_insecure_urls": True})
    with client_for(insecure) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        made = client.post(
            BASE,
            headers=funder.headers,
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["programme.created"]},
        )
        assert made.status_code == 201, made.text
        body = made.json()
        secret = body["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
        Webhook(secret)  # the form standardwebhooks reads
        endpoint_id = body["id"]
        got = client.get(f"{BASE}/{endpoint_id}", headers=funder.headers).json()
        assert "secret" not in got
        assert got["event_types"] == ["programme.created"]
        listed = client.get(BASE, headers=funder.headers).json()
        assert [e["id"] for e in listed["data"]] == [endpoint_id]
        patched = client.patch(
            f"{BASE}/{endpoint_id}",
            headers=funder.headers,
            json={"event_types": ["*"], "description": "ours", "enabled": False},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["event_types"] == ["*"]
        assert patched.json()["enabled"] is False
        rotated = client.post(f"{BASE}/{endpoint_id}/rotate-secret", headers=funder.headers)
        assert rotated.status_code == 200
        assert rotated.json()["secret"] not in (secret, None)
        assert client.delete(f"{BASE}/{endpoint_id}", headers=funder.headers).status_code == 204
        assert_problem(
            client.get(f"{BASE}/{endpoint_id}", headers=funder.headers), 404, "not_found"
        )
        assert client.get(BASE, headers=funder.headers).json()["data"] == []


def test_another_accounts_endpoint_is_not_found(settings: Settings) -> None:
    insecure = settings.model_copy(update={"webhook_allow_insecure_urls": True})
    with client_for(insecure) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        group = make_party(client, admin, "group")
        endpoint_id = client.post(
            BASE, headers=funder.headers, json={"url": "http://127.0.0.1:9/", "event_types": ["*"]}
        ).json()["id"]
        for response in (
            client.get(f"{BASE}/{endpoint_id}", headers=group.headers),
            client.patch(f"{BASE}/{endpoint_id}", headers=group.headers, json={"enabled": False}),
            client.delete(f"{BASE}/{endpoint_id}", headers=group.headers),
            client.post(f"{BASE}/{endpoint_id}/rotate-secret", headers=group.headers),
            client.get(f"{BASE}/{endpoint_id}/deliveries", headers=group.headers),
        ):
            assert_problem(response, 404, "not_found")
        assert client.get(BASE, headers=group.headers).json()["data"] == []


def test_url_rules_answer_their_codes(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        group = make_party(client, admin, "group")

        def create(url: str, types: list[str] | None = None) -> httpx.Response:
            response: httpx.Response = client.post(
                BASE, headers=group.headers, json={"url": url, "event_types": types or ["*"]}
            )
            return response

        assert_problem(create("http://example.com/hook"), 422, "webhook_url_insecure")
        for private in (
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://169.254.169.254/latest",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://0.0.0.0/hook",
            "https://224.0.0.1/hook",
            "https://localhost/hook",
        ):
            assert_problem(create(private), 422, "webhook_url_not_public")
        assert_problem(create("https://user:pw@example.com/"), 422, "webhook_url_invalid")
        assert_problem(create("https://example.com/" + "a" * 2000), 422, "webhook_url_invalid")
        assert_problem(create("not a url"), 422, "webhook_url_invalid")
        assert_problem(create("https://8.8.8.8/", ["nope.type"]), 422, "validation_error")
        assert_problem(create("https://8.8.8.8/", ["*", "voucher.issued"]), 422, "validation_error")
        # A public address is accepted (no DNS needed for a literal).
        assert create("https://8.8.8.8/hook").status_code == 201
