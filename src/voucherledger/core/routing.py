"""The route class every router uses: one transaction per request, committed
before the response leaves, plus the idempotency replay of POSTs.

It also keeps what every route promises about its input: a body must be JSON (else
415 before the body is parsed) — or ``multipart/form-data`` on a route whose body is a
form (a file upload) — a 405 names every method of the path, and every POST documents
409 ``idempotency_key_reused`` (and 413, 415 where they apply) in OpenAPI. A query
parameter that no route under ``/v1`` declares is refused (422 ``validation_error``
naming it), unless a dependency of the route allows its prefix (``query_prefixes``).

A sync endpoint, its response's serialisation and the commit run in one call to
the thread pool (:meth:`CommittingRoute._fold`): FastAPI would otherwise hand the
request to a worker thread and back three times (the endpoint, the response check,
the commit), and each hand-off costs more CPU than the work of a small request.

A request is run again (up to :data:`~voucherledger.core.db.MAX_ATTEMPTS` in all)
when the database rolled it back as a deadlock or serialization failure, or its
connection died before COMMIT was sent; a connection lost at COMMIT leaves the
outcome unknown and answers 503 ``database_unavailable`` instead."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import BackgroundTasks, Depends, Request, Response, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from voucherledger.core.auth import DeferredPrincipal, pending_principal
from voucherledger.core.db import (
    MAX_ATTEMPTS,
    backoff,
    is_disconnect,
    is_transient,
    is_unavailable,
)
from voucherledger.core.errors import (
    DatabaseUnavailable,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    add_problems,
)
from voucherledger.core.http import is_form_media_type, is_json_media_type
from voucherledger.core.idempotency import (
    IdempotencyScope,
    Replay,
    idempotency_guard,
    record_response,
)

log = structlog.get_logger("voucherledger.routing")

# The request a folded endpoint runs for (set by the route's handler, read by the
# endpoint's wrapper, which FastAPI calls with the endpoint's parameters only).
_REQUEST: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "voucherledger_request", default=None
)


def ledger_key(request: Request) -> str | None:
    """The idempotency key a request's ledger transaction is written under, if any."""
    scope: IdempotencyScope | None = getattr(request.state, "idempotency", None)
    return scope.ledger_key if scope is not None else None


def _finish(
    session: Session, scope: IdempotencyScope | None, response: Response, redact: tuple[str, ...]
) -> None:
    try:
        if scope is not None and response.status_code < 400:
            record_response(
                session,
                scope,
                response.status_code,
                bytes(response.body),
                response.media_type or "application/json",
                redact,
            )
    except BaseException:
        _abort(session)
        raise
    try:
        session.commit()
    except Exception as exc:
        _abort(session)
        if is_unavailable(exc):
            # COMMIT was sent and no answer came: the transaction may have committed.
            # Never run it again here; the client's Idempotency-Key decides.
            raise DatabaseUnavailable(
                "The connection to the database was lost while committing; the outcome "
                "is unknown. Retry with the same Idempotency-Key."
            ) from exc
        raise
    except BaseException:
        _abort(session)
        raise
    session.close()


def allowed_methods(scope: Scope) -> set[str]:
    """Every method some route of the app answers on this path. The router stops at
    the first route whose path matches, so its 405 named that route's methods only."""
    app = scope.get("app")
    methods: set[str] = set()
    for route in iter_route_contexts(getattr(app, "routes", [])):
        if route.path and route.methods and compile_path(route.path)[0].match(scope["path"]):
            methods |= route.methods
    return methods


def query_surface(dependant: Dependant) -> tuple[frozenset[str], tuple[str, ...]]:
    """The query parameters a route takes, through every sub-dependency, by alias (the
    fields of a model-typed parameter each), and the prefixes its dependencies let
    through (a function's ``query_prefixes`` attribute: ``metadata[`` filters)."""
    names: set[str] = set()
    prefixes: list[str] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        for param in current.query_params:
            annotation = param.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(f.alias or n for n, f in annotation.model_fields.items())
            else:
                names.add(param.alias)
        prefixes.extend(getattr(current.call, "query_prefixes", ()))
        pending.extend(current.dependencies)
    return frozenset(names), tuple(prefixes)


def _abort(session: Session) -> None:
    """Roll back and close; on a dead connection the rollback fails too, and must not
    hide the error that ended the request (the server rolled the work back anyway)."""
    try:
        session.rollback()
    except Exception as exc:
        log.warning("rollback_failed", error_type=type(exc).__name__)
    finally:
        try:
            session.close()
        except Exception as exc:
            log.warning("close_failed", error_type=type(exc).__name__)


def _may_run_again(exc: BaseException) -> bool:
    """Rolled back by the database, or its connection died before COMMIT was sent (a
    death at COMMIT is :class:`DatabaseUnavailable`, never run again)."""
    return is_transient(exc) or is_disconnect(exc)


class CommittingRoute(APIRoute):
    # False for a POST that has no principal to keep its keys under (signing in).
    idempotent = True

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.folded = _foldable(endpoint)
        if self.folded:
            endpoint = self._fold(endpoint)
        methods = {m.upper() for m in (kwargs.get("methods") or ())}
        if "POST" in methods:
            if self.idempotent:
                kwargs["dependencies"] = [
                    *(kwargs.get("dependencies") or []),
                    Depends(idempotency_guard),
                ]
                kwargs["responses"] = add_problems(
                    kwargs.get("responses") or {}, IdempotencyKeyReused
                )
        if methods & {"POST", "PUT", "PATCH"}:
            kwargs["responses"] = add_problems(
                kwargs.get("responses") or {}, PayloadTooLarge, UnsupportedMediaType
            )
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is None:
            # Without a body there is no media type to refuse.
            self.responses.pop(UnsupportedMediaType.status, None)
        # A route whose body is a form (File/Form parameters) takes multipart/form-data
        # and nothing else; every other route takes JSON.
        self.takes_form = self.body_field is not None and isinstance(
            self.body_field.field_info, params.Form
        )
        self.query_names, self.query_prefixes = query_surface(self.dependant)
        self.refuses_unknown_query = self.path_format.startswith("/v1/") or self.path == "/v1"

    def _fold(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        """An async stand-in for a sync endpoint (same parameters and return type, for
        FastAPI) that runs the endpoint, serialises its answer and commits, all in one
        worker thread."""

        @functools.wraps(endpoint)
        async def folded(**values: Any) -> Any:
            request = _REQUEST.get()
            if request is None:  # called outside this route's handler
                return await run_in_threadpool(endpoint, **values)
            return await run_in_threadpool(self._run_folded, endpoint, request, values)

        return folded

    def _run_folded(
        self, endpoint: Callable[..., Any], request: Request, values: dict[str, Any]
    ) -> Any:
        pending = pending_principal(request)
        if pending is not None:  # the key check deferred to this thread (core/auth.py)
            pending.resolve()
        values = {
            name: v.resolve() if isinstance(v, DeferredPrincipal) else v
            for name, v in values.items()
        }
        raw = endpoint(**values)
        if isinstance(raw, Response):
            response = raw
        elif isinstance(self.response_class, DefaultPlaceholder):
            response = self._serialise(raw, values)
        else:
            return raw  # FastAPI renders it with the route's class; the handler commits
        background = next((v for v in values.values() if isinstance(v, BackgroundTasks)), None)
        if response.background is None and background is not None:
            response.background = background
        session = getattr(request.state, "db_session", None)
        if session is not None:
            scope = getattr(request.state, "idempotency", None)
            redact = getattr(request.state, "idempotency_redact", ())
            _finish(session, scope, response, redact)
            request.state.db_session = None
        return response

    def _serialise(self, raw: Any, values: dict[str, Any]) -> Response:
        """What FastAPI makes of an endpoint's return value (its status, the
        ``response_model`` check, the JSON bytes, a ``Response`` parameter's status and
        headers), made here in the worker thread."""
        sub = next((v for v in values.values() if isinstance(v, Response)), None)
        status = self.status_code or (sub.status_code if sub is not None else None)
        if sub is not None and sub.status_code:
            status = sub.status_code
        args: dict[str, Any] = {} if status is None else {"status_code": status}
        field = self.response_field
        if field is not None:
            value, errors = field.validate(raw, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=raw)
            content = field.serialize_json(
                value,
                include=self.response_model_include,
                exclude=self.response_model_exclude,
                by_alias=self.response_model_by_alias,
                exclude_unset=self.response_model_exclude_unset,
                exclude_defaults=self.response_model_exclude_defaults,
                exclude_none=self.response_model_exclude_none,
            )
            response: Response = Response(content=content, media_type="application/json", **args)
        else:
            chosen = self.response_class
            render = chosen.value if isinstance(chosen, DefaultPlaceholder) else chosen
            response = render(jsonable_encoder(raw), **args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        if sub is not None:
            response.headers.raw.extend(sub.headers.raw)
        return response

    def _refuse_unknown_query(self, request: Request) -> None:
        unknown = sorted(
            {
                name
                for name in request.query_params
                if name not in self.query_names and not name.startswith(self.query_prefixes)
            }
        )
        if unknown:
            raise ValidationFailed(
                f"Unknown query parameter: {', '.join(n[:60] for n in unknown[:5])}.",
                [
                    {
                        "loc": ["query", name[:60]],
                        "msg": "this route takes no such query parameter",
                        "type": "unknown_parameter",
                    }
                    for name in unknown[:20]
                ],
            )

    async def _refuse_media_type(self, request: Request) -> None:
        content_type = request.headers.get("content-type")
        if self.takes_form:
            if not (content_type and is_form_media_type(content_type)) and (
                content_type or await request.body()
            ):
                raise UnsupportedMediaType(
                    f"The body must be multipart/form-data, not {(content_type or 'none')[:100]}."
                )
        elif content_type and not is_json_media_type(content_type) and await request.body():
            raise UnsupportedMediaType(
                f"The body must be application/json, not {content_type[:100]}."
            )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allowed = ", ".join(sorted(allowed_methods(scope) or self.methods))
            raise HTTPException(status_code=405, headers={"Allow": allowed})
        await super().handle(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if self.refuses_unknown_query:
                self._refuse_unknown_query(request)
            if self.body_field is not None:
                await self._refuse_media_type(request)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    return await once(request)
                except Exception as exc:
                    if attempt == MAX_ATTEMPTS or not _may_run_again(exc):
                        raise
                    # The whole transaction was rolled back (or never reached the
                    # database): run the request again.
                    request.state.db_session = None
                    request.state.idempotency = None
                    await asyncio.sleep(backoff(attempt))
            raise RuntimeError("unreachable")

        async def once(request: Request) -> Response:
            token = _REQUEST.set(request)
            request.state.defer_auth = self.folded
            request.state.pending_principal = None
            try:
                try:
                    response = await original(request)
                except Exception:
                    # Whatever failed before the endpoint ran, a caller without a valid
                    # key (or role) hears that first, as when the key is checked first.
                    pending = pending_principal(request)
                    if pending is not None:
                        await run_in_threadpool(pending.resolve)
                    raise
            except Replay as replay:
                session = getattr(request.state, "db_session", None)
                if session is not None:
                    await run_in_threadpool(_abort, session)
                return Response(
                    replay.body,
                    status_code=replay.status_code,
                    media_type=replay.media_type,
                    headers={"Idempotent-Replayed": "true"},
                )
            except BaseException:
                session = getattr(request.state, "db_session", None)
                if session is not None:
                    await run_in_threadpool(_abort, session)
                raise
            finally:
                _REQUEST.reset(token)
            # A folded endpoint has committed already (and cleared the session).
            session = getattr(request.state, "db_session", None)
            if session is not None:
                scope = getattr(request.state, "idempotency", None)
                redact = getattr(request.state, "idempotency_redact", ())
                await run_in_threadpool(_finish, session, scope, response, redact)
            return response

        return handler


def _foldable(endpoint: Callable[..., Any]) -> bool:
    """A plain sync function (not a generator, not a coroutine, not a class)."""
    return (
        inspect.isfunction(endpoint)
        and not inspect.iscoroutinefunction(endpoint)
        and not inspect.isgeneratorfunction(endpoint)
    )


class UnauthenticatedRoute(CommittingRoute):
    """A route anyone may call (no principal): its POSTs take no ``Idempotency-Key``,
    as there is no account to keep the key under."""

    idempotent = False


class LookupRoute(CommittingRoute):
    """A POST that changes nothing (a look-up whose input does not belong in a URL, such
    as a voucher code): it takes no ``Idempotency-Key``, as there is nothing to run
    twice and a stored answer would be a stale one."""

    idempotent = False
