"""Browser stories: the app served for real, driven in Debian's Chromium by
Playwright (never a browser build of Playwright's own: ``/usr/bin/chromium``).

Every page a story opens is checked for Content-Security-Policy violations (a page
that needs an inline script breaks here) and may be checked with axe-core
(``tests/vendor/axe.min.js``, run in the page) for serious or critical violations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from tests.factories.people import PASSWORD
from tests.factories.server import running_server
from voucherledger.accounts.service import create_admin
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe.min.js"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# As the machine's own probe starts it: no sandbox (root), no GPU, and none of the
# background connections this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}


def browser_unavailable_reason() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install -y chromium chromium-driver)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright (the Python package) is not installed"
    return None


def require_browser() -> None:
    """Skip without a browser; under CI=true (``.ci/run`` installs it) fail instead."""
    reason = browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run under CI: {reason}")
    pytest.skip(reason)


@dataclass
class Live:
    """A served app: its URL, an admin key and a plain HTTP client for set-up."""

    url: str
    admin: dict[str, str]
    http: httpx.Client

    def api(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def key(self, account_id: str) -> dict[str, str]:
        """The headers of a new API key of the account, made by the admin."""
        made = self.api("POST", f"/v1/accounts/{account_id}/keys", self.admin)
        return {"Authorization": f"Bearer {made['key']}"}


@contextmanager
def live_app(settings: Settings) -> Iterator[Live]:
    """The app served on a free port over plain http, with a fresh admin key."""
    plain = settings.model_copy(update={"session_cookie_secure": False})
    engine = create_engine(settings.database_url)
    try:
        with transaction(sessionmaker(engine, expire_on_commit=False)) as session:
            key = create_admin(session, "Scheme admin").key
    finally:
        engine.dispose()
    with running_server(plain) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Live(url, {"Authorization": f"Bearer {key}"}, http)


@dataclass
class Watched:
    """A page and what went wrong in it: CSP violations and script errors."""

    page: Any
    problems: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.problems, self.problems


def watch(page: Any) -> Watched:
    watched = Watched(page)

    def on_console(message: Any) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            watched.problems.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"pageerror: {error}"))
    return watched


@contextmanager
def chromium(extra_args: list[str] | None = None) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + (extra_args or [])
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browsing(
    browser: Any,
    *,
    viewport: dict[str, int] | None = None,
    locale: str = "en-GB",
    permissions: list[str] | None = None,
    base_url: str | None = None,
) -> Iterator[Watched]:
    """A fresh browser context (its own cookies: one person) and a watched page."""
    context = browser.new_context(
        viewport=viewport or DESKTOP,
        locale=locale,
        permissions=permissions or [],
        base_url=base_url,
    )
    context.set_default_timeout(15_000)
    try:
        yield watch(context.new_page())
    finally:
        context.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations (WCAG 2.x A/AA rules) of the page."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated by the driver, not as a page script: the page's CSP is not bypassed.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values:
              ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Any) -> None:
    found = axe_violations(page)
    assert not found, f"{page.url}: {found}"


def screenshot(page: Any, name: str) -> None:
    """Save docs/console/<name>.png when VOUCHERLEDGER_SCREENSHOTS is set
    (``make screenshots``); otherwise nothing."""
    if os.environ.get("VOUCHERLEDGER_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def invite(live: Live, account_id: str, email: str, role: str = "owner") -> str:
    """An invitation into the account, made by the scheme admin: its token."""
    invited = live.api(
        "POST",
        f"/v1/accounts/{account_id}/members",
        live.admin,
        json={"email": email, "name": email.split("@")[0], "role": role},
    )
    return str(invited["invite_token"])


def person(live: Live, account_id: str, email: str, name: str, role: str = "owner") -> str:
    """A member of the account who can sign in with :data:`PASSWORD`: invited by the
    scheme admin and accepted, both through the API. Their member id."""
    invited = live.api(
        "POST",
        f"/v1/accounts/{account_id}/members",
        live.admin,
        json={"email": email, "name": name, "role": role},
    )
    live.api(
        "POST",
        "/v1/invites/accept",
        {},
        json={"token": invited["invite_token"], "password": PASSWORD},
    )
    return str(invited["id"])


def sign_in(page: Any, email: str, lands: Any = None) -> None:
    """In the browser, in any language (fields by id): sign in with :data:`PASSWORD`,
    then wait for ``lands`` (a URL pattern or predicate), or else for the page to load."""
    page.goto("/console/signin")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("form[action='/console/signin'] button[type=submit]").click()
    if lands is None:
        page.wait_for_load_state()
    else:
        page.wait_for_url(lands)


def accept_and_sign_in(page: Any, token: str, email: str, home: str) -> None:
    """In the browser: accept the invitation with :data:`PASSWORD`, then sign in and
    land on ``home``. Fields by id, so any language does."""
    page.goto(f"/console/invite?token={token}")
    assert_accessible(page)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("#f-password_again").fill(PASSWORD)
    page.locator("form[action='/console/invite'] button[type=submit]").click()
    page.wait_for_url("**/console/signin?notice=invite_accepted")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("form[action='/console/signin'] button[type=submit]").click()
    page.wait_for_url(f"**{home}")
    assert_accessible(page)
