"""Base classes of the API's request and response bodies, and the input types every
request string and timestamp goes through.

Strings: PostgreSQL cannot store U+0000 (psycopg raises before the statement runs)
while SQLite can, so a NUL would make the two databases disagree; other control
characters have no place in names, ids or references either. :data:`SingleLine`
refuses every C0 control character (tab and line breaks included), U+007F, the
non-characters U+FFFE/U+FFFF and lone surrogates; :data:`FreeText` allows tab, line
feed and carriage return and refuses the rest. Both answer 422 ``validation_error``
before any database call. :func:`forbidden_character` is the one rule, also used for
path and query parameters (:mod:`voucherledger.core.http`).

Timestamps: :data:`UTCDateTimeIn` requires a zone and refuses an instant whose UTC
form is outside ``datetime``'s range (``9999-12-31T23:59:59-23:59``), which would
otherwise overflow deep inside a query.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError


class Schema(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


# The description of every ``created_by`` / ``*_by`` field of a response.
CREATED_BY = (
    "Who did it: a member id (mem_...) for a person, an API key id (key_...) for an "
    "account's own key, 'system' for the service's own work; null for a record made "
    "before the service recorded it."
)


class InputSchema(BaseModel):
    """A request body: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_NOT_TEXT = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff"
_FORBIDDEN_MULTILINE = re.compile(f"[{_NOT_TEXT}]")
_FORBIDDEN_SINGLE_LINE = re.compile(f"[{_NOT_TEXT}\t\n\r]")


def forbidden_character(value: str, *, multiline: bool) -> str | None:
    """The first character ``value`` may not hold, or None: C0 controls (tab, line feed
    and carriage return allowed when ``multiline``), U+007F, U+FFFE, U+FFFF and lone
    surrogates."""
    found = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_SINGLE_LINE).search(value)
    return found.group() if found else None


def _text_check(*, multiline: bool) -> BeforeValidator:
    # Before the string's own validation, so stripping cannot hide a trailing newline
    # in a single-line field; non-strings are left to the type's own error.
    def check(value: Any) -> Any:
        if isinstance(value, str):
            bad = forbidden_character(value, multiline=multiline)
            if bad is not None:
                raise PydanticCustomError(
                    "string_control_character",
                    "character U+{code} is not allowed here",
                    {"code": f"{ord(bad):04X}"},
                )
        return value

    return BeforeValidator(check)


SingleLine = _text_check(multiline=False)
"""Metadata for ``Annotated[str, ...]``: names, ids, codes, references."""
FreeText = _text_check(multiline=True)
"""Metadata for ``Annotated[str, ...]``: descriptions, reasons, outcomes."""


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_out_of_range",
            "the instant in UTC is outside 0001-01-01 to 9999-12-31",
        ) from None


# A timestamp a client sends: zone required (naive is 422), held and echoed in UTC,
# as every timestamp of the API is; its UTC form must be a representable datetime.
UTCDateTimeIn = Annotated[AwareDatetime, AfterValidator(_to_utc)]


# A sane address, not RFC 5322 in full: one @, a local part of printable characters
# without spaces, a domain of dot-separated labels of letters, digits and hyphens
# (internationalised domains in their xn-- form), ending in a label of letters.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})")


def _email(value: str) -> str:
    local = value.partition("@")[0]
    if not _EMAIL.fullmatch(value) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("not an email address")
    return value


Email = Annotated[
    str,
    SingleLine,
    StringConstraints(min_length=3, max_length=254, strip_whitespace=True),
    AfterValidator(_email),
]


# --- Issue 13: the integrator's own keys and values on objects ---
METADATA_MAX_KEYS = 20
METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
MetadataValue = Annotated[str, FreeText, StringConstraints(max_length=500)]


def _metadata_size(value: dict[str, str]) -> dict[str, str]:
    if len(value) > METADATA_MAX_KEYS:
        raise PydanticCustomError(
            "metadata_too_many_keys",
            "metadata holds at most {limit} keys",
            {"limit": METADATA_MAX_KEYS},
        )
    return value


Metadata = Annotated[dict[MetadataKey, MetadataValue], AfterValidator(_metadata_size)]
"""``metadata`` of a request: up to 20 keys of 1 to 40 characters of ``[A-Za-z0-9_.-]``,
each a string of at most 500 characters. The service stores and returns it, and
never reads it."""
