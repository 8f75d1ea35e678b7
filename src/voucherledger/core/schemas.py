"""Base classes of the API's request and response bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict


class Schema(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseModel):
    """A request body: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# A timestamp a client sends: zone required (naive is 422), held and echoed in UTC,
# as every timestamp of the API is.
UTCDateTimeIn = Annotated[AwareDatetime, AfterValidator(_to_utc)]
