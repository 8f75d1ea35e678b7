"""Stored text written into export files: well-formed and inert for any string.

The database may hold text the API would refuse today (written before a check
existed, or by hand). Every export writer passes stored strings through one of
these, so no stored string can break a file or act in the program that opens it
(docs/exports.md#text-in-exports):

- :func:`csv_cell`: the one cell writer of every CSV export. A text cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
  leading apostrophe (OWASP, CSV injection); numbers are written as they are,
  negative ones included.
- :func:`xml_text` and :func:`xml_attr`: character data and attribute values of
  XML 1.0. A character XML 1.0 cannot carry (C0 controls other than tab, LF and
  CR; U+FFFE, U+FFFF; lone surrogates) becomes U+FFFD, one for one; a carriage
  return is written as ``&#13;`` so a parser does not turn it into LF.
- :func:`json_line`: JSON text with U+0085, U+2028 and U+2029 written as
  ``\\u`` escapes, so a reader that splits lines on every Unicode line boundary
  still reads one JSON value per line. The parsed value is unchanged.
"""

from __future__ import annotations

import re
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

# OWASP's list: a cell starting with one of these is run as a formula by spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
XML_REPLACEMENT = "\ufffd"

# The Unicode line boundaries JSON leaves unescaped (json.dumps escapes the others,
# which are all below U+0020). Outside strings JSON text holds none of them, so
# replacing them anywhere in the text changes no token but the strings they are in.
_JSON_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def csv_cell(value: object) -> str:
    """A CSV cell: empty for None; an int or Decimal as its digits (a leading ``-``
    on a number is not a formula); any other value as text, with an apostrophe
    in front when it starts with one of :data:`FORMULA_STARTS`."""
    if value is None:
        return ""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def xml_chars(text: str) -> str:
    """``text`` with each character XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML_CHAR.sub(XML_REPLACEMENT, text)


def xml_text(text: str) -> str:
    """``text`` as XML 1.0 character data: escaped, with :func:`xml_chars` applied
    and a carriage return as ``&#13;``."""
    return escape(xml_chars(text), {"\r": "&#13;"})


def xml_attr(text: str) -> str:
    """``text`` as a quoted XML 1.0 attribute value (quotes included); tab, LF and
    CR are written as character references, so they survive a parser's
    normalisation."""
    return quoteattr(xml_chars(text))


def json_line(text: str) -> str:
    """JSON text with U+0085, U+2028 and U+2029 escaped; parses to the same value."""
    for char, escaped in _JSON_LINE_BREAKS.items():
        if char in text:
            text = text.replace(char, escaped)
    return text
