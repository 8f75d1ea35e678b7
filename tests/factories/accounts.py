"""Accounts and keys made through the API, as an operator would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tests.factories.app import bearer


@dataclass(frozen=True)
class Party:
    id: str
    kind: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


def group_profile(**overrides: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "group_type": "hometown_association",
        "origin_country": "GH",
        "residence_country": "GB",
        "women_led": False,
    }
    profile.update(overrides)
    return profile


def account_body(kind: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "name": name or f"A {kind}"}
    if kind == "group":
        body["group"] = group_profile(**extra.pop("group", {}))
    if kind == "supplier":
        body["supplier"] = extra.pop(
            "supplier", {"service_categories": ["leadership", "fundraising"]}
        )
    body.update(extra)
    return body


def make_party(client: TestClient, admin: dict[str, str], kind: str, **extra: Any) -> Party:
    response = client.post("/v1/accounts", headers=admin, json=account_body(kind, **extra))
    assert response.status_code == 201, response.text
    account_id = response.json()["id"]
    key = client.post(f"/v1/accounts/{account_id}/keys", headers=admin)
    assert key.status_code == 201, key.text
    return Party(account_id, kind, key.json()["key"])
