"""The French catalogue is complete: every message the console's code and templates
can show (extracted as ``make i18n`` does) has a French translation that keeps its
placeholders, and none is fuzzy."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from voucherledger.console import i18n

CONSOLE = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _extracted() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(CONSOLE), method_map=METHODS, options_map=OPTIONS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_french_translation() -> None:
    messages = _extracted()
    assert "Sign in" in messages
    assert "You are signed out." in messages
    with open(i18n.catalogue_path("fr"), "rb") as po:
        catalogue = read_po(po, locale="fr")
    missing, fuzzy, broken = [], [], []
    for message_id in sorted(messages):
        entry = catalogue.get(message_id)
        if entry is None or not entry.string:
            missing.append(message_id)
            continue
        if entry.fuzzy:
            fuzzy.append(message_id)
        translated = entry.string if isinstance(entry.string, str) else entry.string[0]
        if set(PLACEHOLDER.findall(message_id)) != set(PLACEHOLDER.findall(translated)):
            broken.append(message_id)
    assert not missing, f"untranslated (run make i18n, then translate): {missing}"
    assert not fuzzy, f"fuzzy: {fuzzy}"
    assert not broken, f"placeholders differ: {broken}"


def test_a_french_page_is_french() -> None:
    assert i18n.translations("fr").gettext("Sign in") == "Connexion"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"
