"""The check character is verified in the browser with the server's algorithm: the
console's script and ``vouchers.codes.normalise`` give the same answer (the same
canonical code, or none) for real codes, every kind of typo and forgiving input."""

from __future__ import annotations

import random

import pytest

from tests.factories.browser import browsing, chromium, live_app
from voucherledger.core.ids import CROCKFORD
from voucherledger.core.settings import Settings
from voucherledger.vouchers import codes

pytestmark = pytest.mark.slow


def _typed(rng: random.Random) -> list[str]:
    """A real code and the ways people mistype or reformat it."""
    code = codes.generate()
    compact = code.replace("-", "")
    data = compact[2:]
    out = [code, code.lower(), compact, data, " ".join(code.split("-")), code.replace("1", "l")]
    i = rng.randrange(len(data))
    wrong = rng.choice([c for c in CROCKFORD if c != data[i]])
    out.append("VL" + data[:i] + wrong + data[i + 1 :])  # one character substituted
    j = rng.randrange(len(data) - 1)
    if data[j] != data[j + 1]:
        out.append("VL" + data[:j] + data[j + 1] + data[j] + data[j + 2 :])  # a swap
    out.append(code[:-2])  # too short
    out.append(code + "0")  # too long
    out.append(code.replace(code[4], "U"))  # not a Crockford character
    return out


# No database work here: SQLite is enough.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_browser_and_the_server_agree_on_every_code(settings: Settings) -> None:
    rng = random.Random(20261202)
    typed = [t for _ in range(300) for t in _typed(rng)] + ["", "VL", "VL-", "  ", "V1" * 9]
    expected = [codes.normalise(t) for t in typed]
    assert None in expected
    assert any(expected)
    with live_app(settings) as live, chromium() as browser:
        with browsing(browser, base_url=live.url) as watched:
            watched.page.goto("/console/signin")
            got = watched.page.evaluate("(xs) => xs.map(window.voucherledger.normalise)", typed)
            watched.assert_clean()
    mismatches = [(t, e, g) for t, e, g in zip(typed, expected, got, strict=True) if e != g]
    assert not mismatches, mismatches[:10]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_inline_script_is_refused_and_the_stories_would_see_it(settings: Settings) -> None:
    """The harness every story uses fails a page the CSP had to refuse something on."""
    with live_app(settings) as live, chromium() as browser:
        with browsing(browser, base_url=live.url) as watched:
            watched.page.goto("/console/signin")
            watched.assert_clean()
            ran = watched.page.evaluate(
                """() => { window.ran = false; const s = document.createElement('script');
                s.textContent = 'window.ran = true'; document.body.appendChild(s);
                return window.ran; }"""
            )
            watched.page.wait_for_timeout(200)
            assert ran is False
            with pytest.raises(AssertionError, match="Content Security Policy"):
                watched.assert_clean()
