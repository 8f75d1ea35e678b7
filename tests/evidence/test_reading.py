"""``GET /v1/evidence/{id}`` (and ``/meta``): for the uploader, the admin, and the
parties of the claim it backs; everyone else gets the 404 of an unknown id."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.evidence import jpeg, pdf, upload
from tests.factories.programmes import assert_problem, issue
from tests.factories.redemptions import Cast, claim, claim_programme, make_cast
from voucherledger.core.settings import Settings


def _can_read(client: TestClient, headers: dict[str, str], evidence_id: str) -> bool:
    file = client.get(f"/v1/evidence/{evidence_id}", headers=headers)
    meta = client.get(f"/v1/evidence/{evidence_id}/meta", headers=headers)
    if file.status_code == 404:
        assert_problem(file, 404, "not_found")
        assert_problem(meta, 404, "not_found")
        return False
    assert (file.status_code, meta.status_code) == (200, 200), (file.text, meta.text)
    return True


def test_the_file_comes_back_as_an_attachment(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        content = jpeg(b"receipt")
        made = upload(client, c.supplier.headers, content)
        response = client.get(f"/v1/evidence/{made['id']}", headers=c.supplier.headers)
        assert response.status_code == 200
        assert response.content == content
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="{made["id"]}.jpg"'
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["etag"] == f'"{made["sha256"]}"'
        assert response.headers["cache-control"] == "private, no-store"
        meta = client.get(f"/v1/evidence/{made['id']}/meta", headers=c.supplier.headers).json()
        assert meta == {**made, "redemption_id": None, "created_by": meta["created_by"]}
        assert meta["created_by"].startswith("key_")


def _claimed_with_evidence(client: TestClient, c: Cast) -> tuple[str, str]:
    pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
    voucher = issue(client, c.manager, pid, c.group.id, 10_000)
    evidence_id = upload(client, c.supplier.headers, pdf("read rules"))["id"]
    made = claim(client, c.supplier, voucher["code"], 1_000, evidence_ids=[evidence_id])
    return evidence_id, made["id"]


def test_who_reads_a_file(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        loose = upload(client, c.supplier.headers, pdf("not claimed"))["id"]
        # Before a claim uses it: the uploader and the admin only.
        assert _can_read(client, c.supplier.headers, loose)
        assert _can_read(client, c.admin, loose)
        for other in (c.group, c.funder, c.manager, c.auditor, c.other_supplier):
            assert not _can_read(client, other.headers, loose)

        used, redemption_id = _claimed_with_evidence(client, c)
        meta = client.get(f"/v1/evidence/{used}/meta", headers=c.group.headers).json()
        assert meta["redemption_id"] == redemption_id
        # The claim's parties read it; the same roles elsewhere do not.
        for party in (c.supplier, c.group, c.funder, c.manager, c.auditor):
            assert _can_read(client, party.headers, used), party.kind
        assert _can_read(client, c.admin, used)
        for other in (c.other_group, c.other_supplier, c.other_funder):
            assert not _can_read(client, other.headers, used), other.kind
        # An unknown id looks the same as another party's file.
        assert not _can_read(client, c.supplier.headers, "evd_00000000000000000000000000")
