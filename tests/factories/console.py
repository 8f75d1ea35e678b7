"""The console driven without a browser: a TestClient with a person's session in
its cookie jar, and the pieces of a page a form needs (CSRF token, idempotency key).
Browser stories are in tests/factories/browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.people import PASSWORD
from voucherledger.core.settings import Settings

_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')


@contextmanager
def console_client(settings: Settings) -> Iterator[TestClient]:
    """The app over plain http (the cookie cannot be Secure) for console tests."""
    plain = settings.model_copy(update={"session_cookie_secure": False})
    with client_for(plain) as client:
        yield client


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (the first of each name)."""
    found: dict[str, str] = {}
    for name, value in _HIDDEN.findall(html):
        found.setdefault(name, value)
    return found


def console_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the console's own form; the session cookie stays in the jar."""
    form = client.get("/console/signin")
    assert form.status_code == 200, form.text
    pre = hidden_fields(form.text)["pre"]
    response: httpx.Response = client.post(
        "/console/signin",
        data={"pre": pre, "email": email, "password": password},
        follow_redirects=False,
    )
    return response


@dataclass
class Form:
    """A form as the page rendered it: post it with its hidden fields."""

    action: str
    fields: dict[str, str]

    def post(self, client: TestClient, **values: Any) -> httpx.Response:
        response: httpx.Response = client.post(
            self.action, data={**self.fields, **values}, follow_redirects=False
        )
        return response


def form_on(client: TestClient, page: str, action: str) -> Form:
    """The hidden fields of the form posting to ``action`` on ``page``."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    match = re.search(
        r'<form[^>]*action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', response.text, re.S
    )
    assert match, f"no form posting to {action} on {page}"
    return Form(action, hidden_fields(match.group(1)))
