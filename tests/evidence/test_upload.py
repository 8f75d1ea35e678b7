"""``POST /v1/evidence``: a supplier uploads a PDF, JPEG or PNG, judged by its content;
every refusal has its code and writes nothing; a retry with the same key and the same
file replays, whatever its multipart framing."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.evidence import evidence_rows, jpeg, pdf, png, post_file, upload
from tests.factories.people import add_member
from tests.factories.programmes import assert_problem
from tests.factories.redemptions import make_cast
from voucherledger.core.settings import Settings


@pytest.mark.parametrize(
    ("content", "media_type"),
    [(pdf(), "application/pdf"), (jpeg(), "image/jpeg"), (png(), "image/png")],
    ids=["pdf", "jpeg", "png"],
)
def test_a_supplier_uploads_each_accepted_type(
    settings: Settings, content: bytes, media_type: str
) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        # The name and the part's type say PDF whatever the content: neither is asked.
        response = post_file(client, c.supplier.headers, content, filename="scan.pdf")
        assert response.status_code == 201, response.text
        made = response.json()
        assert made["id"].startswith("evd_")
        assert made["sha256"] == hashlib.sha256(content).hexdigest()
        assert (made["size"], made["media_type"]) == (len(content), media_type)
        assert set(made) == {"id", "sha256", "size", "media_type", "created_at"}


def test_the_same_content_is_stored_once(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        first = upload(client, c.supplier.headers, pdf("same"))
        second = upload(client, c.other_supplier.headers, pdf("same"))
        assert first["id"] != second["id"]
        assert first["sha256"] == second["sha256"]
        rows = evidence_rows(client)
        assert len(rows["files"]) == 2
        assert rows["blobs"] == [(first["sha256"], first["size"], "application/pdf")]


def test_refusals_have_their_codes_and_write_nothing(settings: Settings) -> None:
    small = settings.model_copy(update={"evidence_max_bytes": 4096})
    with client_for(small) as client:
        c = make_cast(client)
        before = evidence_rows(client)
        refusals = [
            (post_file(client, c.supplier.headers, b""), 422, "evidence_empty"),
            # A text file named and typed as a PDF is not one.
            (
                post_file(client, c.supplier.headers, b"just some text", filename="x.pdf"),
                415,
                "evidence_type_not_allowed",
            ),
            # A GIF is an image, but not one of the three.
            (
                post_file(client, c.supplier.headers, b"GIF89a" + b"\x00" * 20, filename="a.png"),
                415,
                "evidence_type_not_allowed",
            ),
            # Above the setting, within the body limit (setting + 64 KiB of framing).
            (
                post_file(client, c.supplier.headers, pdf() + b"\x00" * 4096),
                413,
                "evidence_too_large",
            ),
            # Above the body limit: refused before the body is read.
            (
                post_file(client, c.supplier.headers, pdf() + b"\x00" * (80 * 1024)),
                413,
                "payload_too_large",
            ),
        ]
        for response, status, code in refusals:
            assert_problem(response, status, code)
        # JSON is not a form, and a form without its file part is incomplete.
        json_body = client.post("/v1/evidence", headers=c.supplier.headers, json={"file": "x"})
        assert_problem(json_body, 415, "unsupported_media_type")
        no_file = client.post(
            "/v1/evidence", headers=c.supplier.headers, files={"other": ("a.pdf", pdf())}
        )
        assert_problem(no_file, 422, "validation_error")
        assert evidence_rows(client) == before
        # Exactly the limit is accepted.
        exact = pdf()
        exact += b"\x00" * (4096 - len(exact))
        assert post_file(client, c.supplier.headers, exact).status_code == 201


def test_a_malformed_multipart_body_is_422(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        response = client.post(
            "/v1/evidence",
            headers={**c.supplier.headers, "Content-Type": "multipart/form-data; boundary=xyz"},
            content=b"--xyz\r\nnot a part header at all",
        )
        assert_problem(response, 422, "validation_error")
        assert evidence_rows(client)["files"] == []


def test_only_suppliers_upload_and_viewers_do_not(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        viewer = add_member(client, c.supplier.id, "viewer")
        operator = add_member(client, c.supplier.id, "operator")
        for headers in (c.group.headers, c.funder.headers, c.admin, viewer.headers):
            assert_problem(post_file(client, headers, pdf()), 403, "forbidden")
        assert evidence_rows(client)["files"] == []
        made = upload(client, operator.headers)
        meta = client.get(f"/v1/evidence/{made['id']}/meta", headers=operator.headers).json()
        assert meta["created_by"] == operator.id


def _framed(client: TestClient, headers: dict[str, str], content: bytes, boundary: str) -> bytes:
    """A multipart body of one file part, with the boundary given."""
    return (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{boundary}.pdf"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_a_retry_of_the_same_file_replays_whatever_its_framing(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        content = pdf("retried")
        answers = []
        for boundary in ("first-boundary", "another-one-entirely"):
            answers.append(
                client.post(
                    "/v1/evidence",
                    headers={
                        **c.supplier.headers,
                        "Idempotency-Key": "upload-1",
                        "Content-Type": f"multipart/form-data; boundary={boundary}",
                    },
                    content=_framed(client, c.supplier.headers, content, boundary),
                )
            )
        assert answers[0].status_code == 201, answers[0].text
        assert answers[1].status_code == 201
        assert answers[1].headers.get("idempotent-replayed") == "true"
        assert answers[1].json() == answers[0].json()
        assert len(evidence_rows(client)["files"]) == 1
        # The same key with other content is another request.
        other = post_file(client, c.supplier.headers, pdf("other"), key="upload-1")
        assert_problem(other, 409, "idempotency_key_reused")
        assert len(evidence_rows(client)["files"]) == 1
