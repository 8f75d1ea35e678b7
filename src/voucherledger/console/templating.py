"""Rendering the console's pages: Jinja2 templates in the package, one environment
per language (gettext installed, autoescaping on), and the filters pages share —
money in major units in the reader's language, dates, grouped voucher codes."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, get_currency_symbol, parse_pattern
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from voucherledger.console import charts, i18n, messages
from voucherledger.core.money import to_major

STATIC = "/static"


@cache
def _asset_version(path: str) -> str:
    """A short hash of a static file, so a new release is never served from cache."""
    data = (resources.files("voucherledger") / "static" / path).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def asset(path: str) -> str:
    """The URL of a file under ``static/``, with its content hash."""
    return f"{STATIC}/{path}?v={_asset_version(path)}"


def _money(language: str) -> Any:
    def money(amount: int | None, currency: str) -> str:
        if amount is None:
            return ""
        # Decimal from the exact string: never a float on the way.
        return format_currency(
            Decimal(to_major(amount, currency)),
            currency,
            locale=language,
            currency_digits=True,
        )

    return money


def _date(language: str) -> Any:
    def fmt(value: str | date | datetime | None, form: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        if isinstance(value, datetime):
            return format_datetime(value, format=form, locale=language, tzinfo=None)
        return format_date(value, format=form, locale=language)

    return fmt


def data_uri(content: str, media_type: str) -> str:
    """Content the server made (a QR code's SVG) as a ``data:`` URL for an ``<img>``:
    the page's policy allows no inline markup with styles, but allows ``data:`` images."""
    return f"data:{media_type};base64," + base64.b64encode(content.encode()).decode()


def grouped(code: str) -> list[str]:
    """A voucher code in its groups, for large display."""
    return [part for part in code.split("-") if part]


def _charts(language: str) -> dict[str, Any]:
    """The charts as template globals: ``currency=`` formats the figures as money in
    the page's language; ``fmt=`` any other way; neither, as grouped integers."""
    money = _money(language)

    locale = Locale.parse(language)
    # The language's own percent pattern ("#,##0 %" in French), with one decimal.
    pattern = parse_pattern(locale.percent_formats[None].pattern)
    pattern.frac_prec = (1, 1)

    def pct(share: float) -> str:
        return str(pattern.apply(share, locale))

    def bound(draw: Any, *, shares: bool) -> Any:
        def chart(*args: Any, currency: str | None = None, **kwargs: Any) -> Any:
            if currency is not None and kwargs.get("fmt") is None:
                kwargs["fmt"] = lambda value: money(value, currency)
            if kwargs.get("fmt") is None:
                kwargs["fmt"] = lambda value: format_decimal(value, locale=language)
            if shares:
                kwargs.setdefault("pct", pct)
            return draw(*args, **kwargs)

        return chart

    return {
        "stacked_bar": bound(charts.stacked_bar, shares=True),
        "bars": bound(charts.bars, shares=True),
        "columns": bound(charts.columns, shares=False),
    }


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("voucherledger.console", "templates"),
        autoescape=select_autoescape(("html", "xml")),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = _money(language)
    env.filters["date"] = _date(language)
    env.filters["major"] = to_major
    env.filters["grouped"] = grouped
    env.filters["data_uri"] = data_uri
    env.globals["notices"] = messages.NOTICES
    env.globals["problems"] = messages.PROBLEMS
    env.globals["category_names"] = messages.CATEGORIES
    env.globals["asset"] = asset
    env.globals["key_suffix"] = lambda: secrets.token_urlsafe(6)
    env.globals["languages"] = i18n.LANGUAGES
    env.globals.update(_charts(language))
    env.globals["currency_symbol"] = lambda c: get_currency_symbol(c, locale=language)
    return env


def gettext_for(language: str) -> Any:
    """``gettext`` of ``language``, for messages made in Python."""
    return i18n.translations(language).gettext


def gettext_of(request: Request) -> Any:
    """``gettext`` of the request's language (English before one is chosen)."""
    return gettext_for(getattr(request.state, "language", None) or "en")


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page in the request's language."""
    language = getattr(request.state, "language", None) or i18n.negotiate(request)
    page = environment(language).get_template(template)
    body = page.render(request=request, lang=language, path=request.url.path, **(context or {}))
    return HTMLResponse(body, status_code=status, headers=headers)
