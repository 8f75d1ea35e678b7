"""A supplier's contact and payout details: ``PATCH /v1/accounts/{id}/supplier-profile``
by the supplier's owners (or its own key) and the admin, the IBAN checked; the payout
details shown only to the supplier, the admin and the funders and managers of
programmes that accredit it."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import make_party
from tests.factories.app import client_for
from tests.factories.people import add_member
from tests.factories.programmes import accredit, assert_problem, funded_programme, session_factory
from tests.factories.redemptions import make_cast
from voucherledger.core.settings import Settings

IBAN = "DE89 3704 0044 0532 0130 00"
IBAN_COMPACT = "DE89370400440532013000"
PAYOUT = ("payout_iban", "payout_bic", "payout_account_holder", "payout_updated_at")


def patch(
    client: TestClient, headers: dict[str, str], account_id: str, **body: Any
) -> httpx.Response:
    response: httpx.Response = client.patch(
        f"/v1/accounts/{account_id}/supplier-profile", headers=headers, json=body
    )
    return response


def profile_row(client: TestClient, account_id: str) -> tuple[Any, ...]:
    with session_factory(client)() as session:
        return tuple(
            session.execute(
                text(
                    "SELECT contact_email, contact_phone, payout_iban, payout_bic, "
                    "payout_account_holder, payout_updated_at, payout_updated_by "
                    "FROM accounts WHERE id = :id"
                ),
                {"id": account_id},
            ).one()
        )


def test_an_owner_sets_contact_and_payout_details(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        owner = add_member(client, c.supplier.id, "owner")
        response = patch(
            client,
            owner.headers,
            c.supplier.id,
            contact_email="desk@supplier.example",
            contact_phone="+49 30 1234-567",
            payout_iban=IBAN.lower(),
            payout_bic="deutdeff",
            payout_account_holder="Supplier GmbH",
        )
        assert response.status_code == 200, response.text
        shown = response.json()["supplier"]
        assert shown["payout_iban"] == IBAN_COMPACT  # normalised: compact, upper case
        assert shown["payout_bic"] == "DEUTDEFF"
        assert (shown["contact_email"], shown["contact_phone"]) == (
            "desk@supplier.example",
            "+49 30 1234-567",
        )
        assert shown["payout_updated_by"] == owner.id
        first_change = shown["payout_updated_at"]
        assert first_change is not None

        # A contact change alone leaves the payout record as it was; null clears a field.
        again = patch(client, c.supplier.headers, c.supplier.id, contact_phone=None).json()
        assert again["supplier"]["contact_phone"] is None
        assert again["supplier"]["payout_updated_at"] == first_change
        assert again["supplier"]["payout_iban"] == IBAN_COMPACT
        # The admin may change it too, and is then who changed it.
        admin = patch(client, c.admin, c.supplier.id, payout_bic=None).json()["supplier"]
        assert admin["payout_bic"] is None
        assert admin["payout_updated_by"].startswith("key_")
        assert admin["payout_updated_at"] >= first_change


def test_bad_details_are_refused_and_change_nothing(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        assert patch(client, c.supplier.headers, c.supplier.id, payout_iban=IBAN).status_code == 200
        before = profile_row(client, c.supplier.id)
        bad: list[dict[str, Any]] = [
            {"payout_iban": "DE89 3704 0044 0532 0130 01"},  # checksum
            {"payout_iban": "DE89 3704 0044 0532 0130"},  # length for Germany
            {"payout_iban": "XX89 3704 0044 0532 0130 00"},  # no such country
            {"payout_bic": "DEUTXXFF"},
            {"contact_email": "not an address"},
            {"contact_phone": "call me"},
            {"payout_account_holder": "two\nlines"},
            {"service_categories": ["leadership"]},  # not a field of this endpoint
        ]
        for body in bad:
            refused = assert_problem(
                patch(client, c.supplier.headers, c.supplier.id, **body), 422, "validation_error"
            )
            assert refused["errors"][0]["loc"][:2] == ["body", next(iter(body))], refused
        assert profile_row(client, c.supplier.id) == before


def test_who_may_change_a_supplier_profile(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        before = profile_row(client, c.supplier.id)
        operator = add_member(client, c.supplier.id, "operator")
        viewer = add_member(client, c.supplier.id, "viewer")
        admin_id = client.get("/v1/me", headers=c.admin).json()["id"]
        admin_operator = add_member(client, admin_id, "operator")
        for headers in (
            operator.headers,
            viewer.headers,
            admin_operator.headers,
            c.funder.headers,
            c.group.headers,
        ):
            assert_problem(
                patch(client, headers, c.supplier.id, payout_iban=IBAN), 403, "forbidden"
            )
        # Another supplier's profile is not there for it; nor is a group's for the admin.
        assert_problem(
            patch(client, c.other_supplier.headers, c.supplier.id, payout_iban=IBAN),
            404,
            "not_found",
        )
        assert_problem(patch(client, c.admin, c.group.id, payout_iban=IBAN), 404, "not_found")
        assert profile_row(client, c.supplier.id) == before


def _payout_shown(client: TestClient, headers: dict[str, str], supplier_id: str) -> bool:
    response = client.get(f"/v1/accounts/{supplier_id}", headers=headers)
    assert response.status_code == 200, response.text
    supplier = response.json()["supplier"]
    assert supplier["contact_email"] == "desk@supplier.example"  # contact: for all who see it
    return supplier["payout_iban"] is not None


def test_who_sees_the_payout_details(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        admin = c.admin
        stranger = make_party(client, admin, "manager")
        programme = funded_programme(client, c.funder, 1_000, manager_ids=[c.manager.id])
        accredit(client, c.manager, programme["id"], c.supplier.id, ["leadership"])
        for supplier in (c.supplier, c.other_supplier):
            made = patch(
                client,
                supplier.headers,
                supplier.id,
                contact_email="desk@supplier.example",
                payout_iban=IBAN,
                payout_account_holder="Supplier GmbH",
            )
            assert made.status_code == 200, made.text

        assert _payout_shown(client, c.supplier.headers, c.supplier.id)
        assert _payout_shown(client, admin, c.supplier.id)
        assert _payout_shown(client, c.funder.headers, c.supplier.id)
        assert _payout_shown(client, c.manager.headers, c.supplier.id)
        # Funders and managers of no programme accrediting it see the contact only.
        assert not _payout_shown(client, c.other_funder.headers, c.supplier.id)
        assert not _payout_shown(client, stranger.headers, c.supplier.id)
        assert not _payout_shown(client, c.funder.headers, c.other_supplier.id)
        # Groups and other suppliers cannot see the account at all.
        for party in (c.group, c.other_supplier):
            got = client.get(f"/v1/accounts/{c.supplier.id}", headers=party.headers)
            assert_problem(got, 404, "not_found")

        # The directory applies the same rule row by row.
        listed = client.get("/v1/accounts?kind=supplier", headers=c.funder.headers).json()["data"]
        shown = {a["id"]: a["supplier"] for a in listed}
        assert shown[c.supplier.id]["payout_iban"] == IBAN_COMPACT
        assert all(shown[c.other_supplier.id][field] is None for field in PAYOUT)
        # The supplier's own view of itself (GET /v1/me) shows them.
        me = client.get("/v1/me", headers=c.supplier.headers)
        assert me.json()["supplier"]["payout_iban"] == IBAN_COMPACT
