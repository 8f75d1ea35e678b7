"""Reading the event feed in the event tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def read_all(
    client: TestClient, headers: dict[str, str], *, limit: int = 500, **query: Any
) -> list[dict[str, Any]]:
    """Every event the caller reads, page by page (``after`` = the last one's id)."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **query}
        if after is not None:
            params["after"] = after
        response = client.get("/v1/events", headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        out.extend(body["data"])
        if not body["has_more"]:
            return out
        after = body["next_after"]


def types_of(events: list[dict[str, Any]]) -> set[str]:
    return {event["type"] for event in events}
