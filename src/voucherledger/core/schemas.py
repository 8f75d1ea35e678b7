"""Base classes of the API's request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseModel):
    """A request body: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
