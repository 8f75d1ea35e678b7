"""Claims backed by evidence files: each must be the claiming supplier's own free
upload; the claim links them in its transaction, lists them, and its journal
transaction records their hashes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.app import client_for
from tests.factories.evidence import evidence_rows, pdf, png, upload
from tests.factories.programmes import assert_problem, issue, session_factory
from tests.factories.redemptions import (
    claim,
    claim_body,
    claim_count,
    claim_programme,
    claim_snapshot,
    decide,
    get_claim,
    make_cast,
    post_claim,
)
from voucherledger.core.errors import EvidenceInvalid
from voucherledger.core.settings import Settings
from voucherledger.evidence import repository, service


def _claim_metadata(client: TestClient, redemption_id: str) -> dict[str, Any]:
    """The metadata of the claim's own journal transaction (hold or capture)."""
    with session_factory(client)() as session:
        rows = session.execute(
            text("SELECT kind, metadata FROM ledger_transactions WHERE kind IN ('hold', 'capture')")
        ).all()
    for _kind, raw in rows:
        meta: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
        if meta.get("redemption_id") == redemption_id:
            return meta
    raise AssertionError(f"no claim transaction of {redemption_id}")


def test_a_claim_with_evidence_links_lists_and_seals_it(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        invoice = upload(client, c.supplier.headers, pdf("invoice"))
        photo = upload(client, c.supplier.headers, png(b"photo"))
        made = claim(
            client, c.supplier, voucher["code"], 2_000, evidence_ids=[photo["id"], invoice["id"]]
        )
        refs = [
            {key: f[key] for key in ("id", "sha256", "size", "media_type")}
            for f in sorted((invoice, photo), key=lambda f: f["id"])
        ]
        assert made["evidence_files"] == refs
        assert get_claim(client, c.group, made["id"])["evidence_files"] == refs
        listed = client.get("/v1/redemptions", headers=c.funder.headers).json()["data"]
        assert [r["evidence_files"] for r in listed] == [refs]
        meta = _claim_metadata(client, made["id"])
        assert meta["voucher_id"] == voucher["id"]
        assert meta["evidence"] == [
            {key: f[key] for key in ("sha256", "size", "media_type")} for f in refs
        ]
        assert {row[2] for row in evidence_rows(client)["files"]} == {made["id"]}
        # A decision answers with the files too.
        confirmed = decide(client, c.group, made["id"], "confirm").json()
        assert confirmed["evidence_files"] == refs


def test_a_claim_without_evidence_records_none(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        made = claim(client, c.supplier, voucher["code"], 2_000)
        assert made["evidence_files"] == []
        assert "evidence" not in _claim_metadata(client, made["id"])


def test_bad_evidence_ids_are_refused_and_write_nothing(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        mine = upload(client, c.supplier.headers, pdf("mine"))["id"]
        used = upload(client, c.supplier.headers, pdf("used"))["id"]
        theirs = upload(client, c.other_supplier.headers, pdf("theirs"))["id"]
        first = claim(client, c.supplier, voucher["code"], 1_000, evidence_ids=[used])
        state, files = claim_snapshot(client), evidence_rows(client)

        response = post_claim(
            client, c.supplier, voucher["code"], 1_000, evidence_ids=[mine, theirs, used, "evd_x"]
        )
        body = assert_problem(response, 422, "evidence_invalid")
        assert [(e["loc"], e["type"]) for e in body["errors"]] == [
            (["body", "evidence_ids", 1], "unknown"),
            (["body", "evidence_ids", 2], "used"),
            (["body", "evidence_ids", 3], "unknown"),
        ]
        assert first["id"] in body["errors"][1]["msg"]
        # Another supplier's file looks exactly like an unknown id.
        assert theirs not in json.dumps(body).replace(f"no upload of yours is {theirs}", "")
        for bad in ([mine, mine], [f"evd_{i}" for i in range(11)]):
            assert_problem(
                post_claim(client, c.supplier, voucher["code"], 1_000, evidence_ids=bad),
                422,
                "validation_error",
            )
        assert claim_snapshot(client) == state
        assert evidence_rows(client) == files


def test_a_file_taken_meanwhile_refuses_the_second_claim(settings: Settings) -> None:
    """The guarded link: a claim that read a file as free, but finds it taken when it
    links it (another claim committed first), is refused."""
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        evidence_id = upload(client, c.supplier.headers)["id"]
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            files = service.for_claim(session, c.supplier.id, [evidence_id])  # free now
        first = claim(client, c.supplier, voucher["code"], 1_000, evidence_ids=[evidence_id])
        second = claim(client, c.supplier, voucher["code"], 1_000)
        with factory() as session:
            with pytest.raises(EvidenceInvalid) as refused:
                service.attach(session, c.supplier.id, files, second["id"])
            session.rollback()
        assert refused.value.extra["errors"][0]["type"] == "used"
        with factory() as session:
            file = repository.get_file(session, evidence_id)
            assert file is not None
            assert file.redemption_id == first["id"]


def test_a_retried_claim_with_evidence_replays(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        evidence_id = upload(client, c.supplier.headers)["id"]
        body = claim_body(voucher["code"], 1_000, evidence_ids=[evidence_id])
        headers = {**c.supplier.headers, "Idempotency-Key": "claim-with-evidence"}
        first = client.post("/v1/redemptions", headers=headers, json=body)
        again = client.post("/v1/redemptions", headers=headers, json=body)
        assert first.status_code == again.status_code == 201, again.text
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()
        assert claim_count(client) == 1
