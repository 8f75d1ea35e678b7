"""``/healthz``, ``/readyz`` and the operations endpoints."""

from __future__ import annotations

from pathlib import Path

from tests.factories.app import client_for
from voucherledger.core.settings import Settings
from voucherledger.ops.migrate import downgrade, head_revision


def test_healthz_is_200_without_a_key(settings: Settings) -> None:
    with client_for(settings) as client:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_readyz_is_200_at_the_head_migration(settings: Settings) -> None:
    with client_for(settings) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ok",
            "database": "ok",
            "migration": head_revision(),
            "head": head_revision(),
        }


def test_readyz_is_503_when_the_schema_is_behind(settings: Settings) -> None:
    with client_for(settings) as client:
        assert client.get("/readyz").status_code == 200
        downgrade(settings.database_url, "base")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "status": "not_ready",
            "database": "ok",
            "migration": None,
            "head": head_revision(),
        }
        # The process itself is still up.
        assert client.get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}",
        signing_key="22" * 32,
        signing_key_file=tmp_path / "unused-key",
        sealer_enabled=False,
        sweep_enabled=False,  # tests sweep when they mean to
        log_level="WARNING",
    )
    with client_for(settings) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["database"].startswith("unreachable")
        assert body["head"] == head_revision()
        assert client.get("/healthz").status_code == 200


def test_swagger_ui_and_the_openapi_document_are_served(settings: Settings) -> None:
    with client_for(settings) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        document = client.get("/openapi.json")
        assert document.status_code == 200
        assert "/v1/accounts" in document.json()["paths"]
