"""Metadata carried in exports: a voucher's ``metadata`` in its 360Giving grant, under
``additional_data`` (the standard has no field for it), valid against the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.exports import giving360_validator
from tests.factories.programmes import issue
from tests.factories.redemptions import claim_programme, make_cast
from voucherledger.core.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


def test_360giving_grant_carries_voucher_metadata(client: TestClient) -> None:
    cast = make_cast(client)
    pid = claim_programme(client, cast)["id"]
    tagged = issue(client, cast.manager, pid, cast.group.id, 500, metadata={"grant_id": "G-17"})
    plain = issue(client, cast.manager, pid, cast.group.id, 500)
    response = client.get(
        "/v1/audit/export", headers=cast.funder.headers, params={"format": "360giving"}
    )
    assert response.status_code == 200, response.text
    package = response.json()
    package.pop("voucherledger_manifest")
    giving360_validator().validate(package)
    extra = {g["id"].rsplit("-", 1)[-1]: g.get("additional_data") for g in package["grants"]}
    assert extra == {tagged["id"]: {"metadata": {"grant_id": "G-17"}}, plain["id"]: None}
