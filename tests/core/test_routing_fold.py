"""The committing route runs a sync endpoint, the check and serialisation of its answer,
and the commit in one worker thread, and answers exactly what FastAPI would: the
route's status, a ``Response`` parameter's status and headers, the response model's
fields, an empty body for 204, a ``Response`` returned as is; a commit that fails is
still the client's error, and nothing of the request is kept."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import APIRouter, Depends, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers
from voucherledger.app import create_app
from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session
from voucherledger.core.settings import Settings


class Answer(BaseModel):
    name: str
    thread: int


class Body(BaseModel):
    n: int = 0


def _app(settings: Settings) -> tuple[TestClient, dict[str, Any]]:
    seen: dict[str, Any] = {}
    router = APIRouter(route_class=CommittingRoute)

    @router.post("/fold", status_code=201)
    def fold(
        body: Body,
        principal: Annotated[Principal, Depends(require_roles("funder"))],
        session: Session = Depends(get_session),
    ) -> Answer:
        seen["endpoint"] = threading.get_ident()
        seen["principal"] = principal

        @event.listens_for(session, "after_commit")
        def committed(_: Session) -> None:
            seen["commit"] = threading.get_ident()

        session.execute(text("SELECT 1"))
        # A field the model does not have is dropped, as FastAPI's check drops it.
        return Answer.model_validate({"name": "x", "thread": seen["endpoint"], "extra": 1})

    @router.get("/sub")
    def sub(response: Response) -> dict[str, str]:
        response.status_code = 202
        response.headers["X-Fold"] = "yes"
        return {"ok": "yes"}

    @router.delete("/gone", status_code=204)
    def gone() -> Response:
        return Response(status_code=204)

    @router.get("/wrong")
    def wrong() -> Answer:
        return {"name": 1}  # type: ignore[return-value]

    app = create_app(settings)
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False), seen


def test_the_endpoint_and_its_commit_run_in_one_thread(settings: Settings) -> None:
    client, seen = _app(settings)
    with client:
        party = make_party(client, admin_headers(client), "funder")
        answer = client.post("/fold", headers=party.headers, json={})
        assert answer.status_code == 201, answer.text
        assert answer.json() == {"name": "x", "thread": seen["endpoint"]}
        assert answer.headers["content-type"] == "application/json"
        assert seen["commit"] == seen["endpoint"]
        assert seen["endpoint"] != threading.get_ident()  # a worker, not the loop


def test_a_request_goes_to_a_worker_thread_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hand-off to the thread pool and back costs more CPU than a small request's
    work: the key check, the endpoint, its answer's check and the commit are one (a
    route of FastAPI's own makes four of them); with an Idempotency-Key the key's
    claim is a second."""
    client, _ = _app(settings)
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    with client:
        party = make_party(client, admin_headers(client), "funder")
        monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
        answer = client.post("/fold", headers=party.headers, json={})
        assert answer.status_code == 201, answer.text
        assert len(hops) == 1, hops
        hops.clear()
        keyed = {**party.headers, "Idempotency-Key": "fold-1"}
        assert client.post("/fold", headers=keyed, json={}).status_code == 201
        assert len(hops) == 2, hops


def test_a_deferred_key_check_still_answers_first(settings: Settings) -> None:
    """The key is checked in the endpoint's thread, yet a bad key is a 401 and a
    wrong kind of account a 403 before any complaint about the body or headers, and
    the endpoint sees the real principal."""
    client, seen = _app(settings)
    with client:
        funder = make_party(client, admin_headers(client), "funder")
        group = make_party(client, admin_headers(client, "G"), "group")
        bad = {"Authorization": "Bearer vl_key_nope"}
        for headers in (bad, {**bad, "Idempotency-Key": "x" * 300}):
            for body in ({"n": "not a number"}, {}):
                answer = client.post("/fold", headers=headers, json=body)
                assert answer.status_code == 401, answer.text
                assert answer.json()["code"] == "unauthenticated"
        refused = client.post("/fold", headers=group.headers, json={"n": "nan"})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        # As before the deferral: the header's rule comes before the route's roles.
        long_key = {**group.headers, "Idempotency-Key": "x" * 300}
        assert client.post("/fold", headers=long_key, json={}).status_code == 422
        assert "principal" not in seen
        invalid = client.post("/fold", headers=funder.headers, json={"n": "nan"})
        assert invalid.status_code == 422
        assert client.post("/fold", headers=funder.headers, json={}).status_code == 201
        assert isinstance(seen["principal"], Principal)
        assert seen["principal"].account_id == funder.id


def test_a_response_parameter_gives_its_status_and_headers(settings: Settings) -> None:
    client, _ = _app(settings)
    with client:
        answer = client.get("/sub")
        assert (answer.status_code, answer.json()) == (202, {"ok": "yes"})
        assert answer.headers["x-fold"] == "yes"
        gone = client.delete("/gone")
        assert (gone.status_code, gone.content) == (204, b"")


def test_an_answer_that_breaks_its_model_is_a_500_problem(settings: Settings) -> None:
    client, _ = _app(settings)
    with client:
        answer = client.get("/wrong")
        assert answer.status_code == 500
        assert answer.headers["content-type"].startswith("application/problem+json")
