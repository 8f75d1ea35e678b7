"""``rawsql.bind`` gives the raw path exactly what the ORM's column types store, so a
row written either way is the same row (and sorts the same on SQLite, where times
are text)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from voucherledger.core.db import UTCDateTime
from voucherledger.core.rawsql import bind

SQLITE = sqlite.dialect()
ORM_TIME = UTCDateTime()
ORM_TEXT = sqlite.DATETIME().bind_processor(SQLITE)  # type: ignore[no-untyped-call]

instants = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - naive bounds; zones are drawn below
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), UTC]),
)


@given(instants)
def test_a_time_binds_as_the_orm_stores_it_on_sqlite(value: datetime) -> None:
    assert ORM_TEXT is not None
    stored = ORM_TEXT(ORM_TIME.process_bind_param(value, SQLITE))
    assert bind("sqlite", value) == stored


@given(instants)
def test_a_time_binds_as_naive_utc_on_postgresql(value: datetime) -> None:
    assert bind("postgresql", value) == value.astimezone(UTC).replace(tzinfo=None)


def test_years_before_1000_keep_four_digits() -> None:
    # strftime("%Y") writes "999" on Linux, which sorts after "2026" as text.
    assert bind("sqlite", datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "0999-01-02 03:04:05.000000"
    )
    assert bind("sqlite", date(999, 1, 2)) == "0999-01-02"


def test_a_naive_time_is_refused_as_the_orm_refuses_it() -> None:
    naive = datetime(2026, 1, 2)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        bind("sqlite", naive)
    with pytest.raises(ValueError, match="naive"):
        ORM_TIME.process_bind_param(naive, SQLITE)
