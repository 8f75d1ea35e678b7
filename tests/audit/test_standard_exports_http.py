"""GET /v1/audit/export?format=iati|360giving: valid against the official schemas over
HTTP, closed by a manifest signed with the ledger's block key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree

from tests.factories.exports import (
    IATI_SCHEMA,
    Story,
    giving360_validator,
    story_on,
)
from voucherledger.ledger.canonical import canonical_json
from voucherledger.ledger.signing import verify_signature


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    with story_on(str(request.param), request, tmp_path_factory.mktemp("standards-http")) as told:
        yield told


def _signed(manifest: dict[str, Any]) -> bool:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return verify_signature(manifest["public_key"], canonical_json(unsigned), manifest["signature"])


def test_iati_over_http_validates_and_carries_a_signed_manifest(story: Story) -> None:
    response = story.client.get(
        "/v1/audit/export", headers=story.funder.headers, params={"format": "iati"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    schema = etree.XMLSchema(etree.parse(str(IATI_SCHEMA)))
    document = etree.fromstring(response.content)
    schema.assertValid(document)
    assert len(document.findall("iati-activity")) == 2
    found = re.search(rb"<!-- voucherledger-manifest (.*) -->", response.content)
    assert found is not None
    manifest = json.loads(found.group(1))
    assert _signed(manifest)
    assert manifest["rows"] == len(document.findall(".//transaction"))
    assert manifest["head_hash"] is not None


def test_360giving_over_http_validates_and_carries_a_signed_manifest(story: Story) -> None:
    response = story.client.get(
        "/v1/audit/export", headers=story.funder.headers, params={"format": "360giving"}
    )
    assert response.status_code == 200, response.text
    package = response.json()
    manifest = package.pop("voucherledger_manifest")
    giving360_validator().validate(package)
    assert len(package["grants"]) == len(story.vouchers)
    assert manifest["rows"] == len(package["grants"])
    assert _signed(manifest)


def test_an_auditor_without_programmes_gets_nothing(story: Story) -> None:
    refused = story.client.get(
        "/v1/audit/export", headers=story.manager.headers, params={"format": "iati"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
