"""Evidence files: small documents of each accepted type, uploads through the API, and
what the evidence tables hold."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.programmes import session_factory


def pdf(note: str = "invoice 14") -> bytes:
    """A small PDF (its first bytes are what decides the type)."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        + f"% {note}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def png(tag: bytes = b"") -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + tag + b"\x00" * 20


def jpeg(tag: bytes = b"") -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + tag + b"\x00" * 20 + b"\xff\xd9"


def post_file(
    client: TestClient,
    headers: dict[str, str],
    content: bytes,
    *,
    filename: str = "evidence.pdf",
    content_type: str = "application/pdf",
    key: str | None = None,
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key is not None else {}
    response: httpx.Response = client.post(
        "/v1/evidence",
        headers={**headers, **extra},
        files={"file": (filename, content, content_type)},
    )
    return response


def upload(
    client: TestClient, headers: dict[str, str], content: bytes | None = None
) -> dict[str, Any]:
    """Upload a file (a PDF by default); the 201 body."""
    response = post_file(client, headers, pdf() if content is None else content)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def evidence_rows(client: TestClient) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the evidence tables, to show that a refusal wrote nothing."""
    with session_factory(client)() as session:
        return {
            "files": [
                tuple(row)
                for row in session.execute(
                    text("SELECT id, sha256, redemption_id FROM evidence_files ORDER BY id")
                )
            ],
            "blobs": [
                tuple(row)
                for row in session.execute(
                    text("SELECT sha256, size, media_type FROM evidence_blobs ORDER BY sha256")
                )
            ],
        }
