"""The console's languages: English and French, through gettext (Babel).

The catalogues are the ``.po`` files under ``console/locale/``; they are compiled in
memory when the app starts (no build step, no binary ``.mo`` in the repository). The
language is the one the person chose with the switch on the page (the cookie
``vl_lang``), else the best match of the browser's ``Accept-Language``, else English.
Messages are written in English in the templates and the code; ``make i18n`` extracts
them into ``messages.pot`` and merges them into each catalogue.
"""

from __future__ import annotations

import io
from functools import cache
from importlib import resources

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LANGUAGES: dict[str, str] = {"en": "English", "fr": "Français"}
DEFAULT = "en"
LANG_COOKIE = "vl_lang"
DOMAIN = "messages"


def catalogue_path(language: str) -> str:
    """The ``.po`` file of ``language`` inside the package (for tests and tools)."""
    root = resources.files("voucherledger.console") / "locale"
    return str(root / language / "LC_MESSAGES" / f"{DOMAIN}.po")


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language``; English is the messages themselves."""
    if language == DEFAULT:
        return NullTranslations()
    with open(catalogue_path(language), "rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def negotiate(request: Request) -> str:
    """The language of this request's page."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    preferred = []
    for part in header.split(",")[:20]:
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        if tag and weight > 0:
            preferred.append((weight, tag.strip().replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred, key=lambda p: -p[0])]
    match = Locale.negotiate(ordered, list(LANGUAGES), sep="_") if ordered else None
    return str(match.language) if match is not None else DEFAULT
