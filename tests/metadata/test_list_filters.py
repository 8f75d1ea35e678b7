"""List filters: ``?metadata[key]=value`` on vouchers and claims, ``created_after`` /
``created_before`` on vouchers, claims and settlements, ``?q=`` on the account
directory, and unknown query parameters refused on every /v1 route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import make_party
from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue
from tests.factories.redemptions import Cast, claim, claim_programme, decide, make_cast
from voucherledger.core.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


@pytest.fixture
def cast(client: TestClient) -> Cast:
    return make_cast(client)


def _ids(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def test_metadata_filter_finds_exactly_the_matching(client: TestClient, cast: Cast) -> None:
    pid = claim_programme(client, cast, accredit_for=(cast.supplier,))["id"]
    both = issue(client, cast.manager, pid, cast.group.id, 500, metadata={"g": "G-17", "r": "n"})
    grant = issue(client, cast.manager, pid, cast.group.id, 500, metadata={"g": "G-17"})
    other = issue(client, cast.manager, pid, cast.group.id, 500, metadata={"g": "G-170"})
    issue(client, cast.manager, pid, cast.group.id, 500)
    headers = cast.manager.headers
    assert _ids(client, "/v1/vouchers", headers, **{"metadata[g]": "G-17"}) == [
        both["id"],
        grant["id"],
    ]
    assert _ids(client, "/v1/vouchers", headers, **{"metadata[g]": "G-17", "metadata[r]": "n"}) == [
        both["id"]
    ]
    assert _ids(client, "/v1/vouchers", headers, **{"metadata[g]": "G-170"}) == [other["id"]]
    assert _ids(client, "/v1/vouchers", headers, **{"metadata[g]": "g-17"}) == []
    assert _ids(client, "/v1/vouchers", headers, **{"metadata[nope]": "G-17"}) == []
    first = claim(client, cast.supplier, both["code"], 10, metadata={"invoice": "INV-1"})
    claim(client, cast.supplier, grant["code"], 10, metadata={"invoice": "INV-2"})
    claim(client, cast.supplier, other["code"], 10)
    for who in (cast.supplier, cast.manager):
        assert _ids(client, "/v1/redemptions", who.headers, **{"metadata[invoice]": "INV-1"}) == [
            first["id"]
        ]


@pytest.mark.parametrize(
    "param",
    [
        pytest.param("metadata[bad key]", id="space"),
        pytest.param("metadata[]", id="empty"),
        pytest.param("metadata[" + "k" * 41 + "]", id="41-chars"),
        pytest.param("metadata[k", id="unclosed"),
    ],
)
def test_bad_metadata_filter_key_is_422(client: TestClient, cast: Cast, param: str) -> None:
    for path in ("/v1/vouchers", "/v1/redemptions"):
        response = client.get(path, headers=cast.manager.headers, params={param: "v"})
        assert_problem(response, 422, "validation_error")


def test_metadata_filter_value_past_500_is_422(client: TestClient, cast: Cast) -> None:
    response = client.get(
        "/v1/vouchers", headers=cast.manager.headers, params={"metadata[k]": "x" * 501}
    )
    assert_problem(response, 422, "validation_error")


def test_more_metadata_filters_than_an_object_can_hold_are_422(
    client: TestClient, cast: Cast
) -> None:
    twenty = {f"metadata[k{i}]": "v" for i in range(20)}
    for path in ("/v1/vouchers", "/v1/redemptions"):
        ok = client.get(path, headers=cast.manager.headers, params=twenty)
        assert ok.status_code == 200, ok.text
        # Hundreds of conditions were a 503 on SQLite (too many terms in one query).
        many = {f"metadata[k{i}]": "v" for i in range(1200)}
        assert_problem(
            client.get(path, headers=cast.manager.headers, params=many), 422, "validation_error"
        )


def test_created_after_and_before(client: TestClient, cast: Cast) -> None:
    pid = claim_programme(client, cast, accredit_for=(cast.supplier,))["id"]
    first = issue(client, cast.manager, pid, cast.group.id, 500)
    second = issue(client, cast.manager, pid, cast.group.id, 500)
    headers = cast.manager.headers
    at = first["created_at"]
    assert _ids(client, "/v1/vouchers", headers, created_after=at) == (
        [second["id"]] if second["created_at"] > at else []
    )
    assert _ids(client, "/v1/vouchers", headers, created_before=second["created_at"]) == (
        [first["id"]] if second["created_at"] > at else []
    )
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert _ids(client, "/v1/vouchers", headers, created_after=future) == []
    assert _ids(client, "/v1/vouchers", headers, created_after=past, created_before=future) == [
        first["id"],
        second["id"],
    ]
    made = claim(client, cast.supplier, first["code"], 10)
    assert _ids(client, "/v1/redemptions", headers, created_after=past) == [made["id"]]
    assert _ids(client, "/v1/redemptions", headers, created_before=past) == []
    assert decide(client, cast.group, made["id"], "confirm").status_code == 200
    proposed = client.post(
        f"/v1/programmes/{pid}/settlements",
        headers=cast.funder.headers,
        json={"supplier_id": cast.supplier.id, "payout_reference": "wire"},
    )
    assert proposed.status_code == 201, proposed.text
    funder = cast.funder.headers
    assert _ids(client, "/v1/settlements", funder, created_after=past) == [proposed.json()["id"]]
    assert _ids(client, "/v1/settlements", funder, created_after=future) == []
    for path in ("/v1/vouchers", "/v1/redemptions", "/v1/settlements"):
        for params in (
            {"created_after": future, "created_before": past},
            {"created_after": past, "created_before": past},
            {"created_after": "2025-01-01T00:00:00"},  # no zone
            {"created_before": "yesterday"},
        ):
            assert_problem(client.get(path, headers=funder, params=params), 422, "validation_error")


def test_directory_search_by_name_part(client: TestClient, cast: Cast) -> None:
    admin = cast.admin
    hope = make_party(client, admin, "group", name="Hope Foundation 100%")
    make_party(client, admin, "group", name="HOPEFUL youth")
    other = make_party(client, admin, "group", name="Other_group")
    found = _ids(client, "/v1/accounts", admin, q="hope")
    assert hope.id in found
    assert len(found) == 2
    assert _ids(client, "/v1/accounts", admin, q="100%") == [hope.id]
    assert _ids(client, "/v1/accounts", admin, q="%") == [hope.id]
    assert _ids(client, "/v1/accounts", admin, q="r_g") == [other.id]
    assert _ids(client, "/v1/accounts", admin, q="othe_") == []  # _ is no wildcard
    assert len(_ids(client, "/v1/accounts", admin, q="HOPE", kind="group")) == 2
    assert _ids(client, "/v1/accounts", admin, q="hope", kind="supplier") == []
    # a funder sees groups and suppliers only, searched the same way
    assert len(_ids(client, "/v1/accounts", cast.funder.headers, q="hope")) == 2
    assert_problem(
        client.get("/v1/accounts", headers=admin, params={"q": "x" * 101}), 422, "validation_error"
    )


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/vouchers", "stauts"),
        ("/v1/redemptions", "metadata"),
        ("/v1/settlements", "metadata[grant_id]"),
        ("/v1/accounts", "name"),
        ("/v1/programmes", "limit2"),
    ],
)
def test_unknown_query_parameter_is_422(
    client: TestClient, cast: Cast, path: str, param: str
) -> None:
    headers = cast.admin if path == "/v1/accounts" else cast.funder.headers
    assert client.get(path, headers=headers).status_code == 200
    response = client.get(path, headers=headers, params={param: "x", "limit": "5"})
    problem = assert_problem(response, 422, "validation_error")
    assert param in problem["detail"]
    assert [e["loc"] for e in problem["errors"]] == [["query", param]]
