from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from guildkeep.db import Database, PortableJSON, Snowflake, UTCDateTime

probe_md = MetaData()
probe = Table(
    "_gk_type_probe",
    probe_md,
    Column("id", Integer, primary_key=True),
    Column("snowflake", Snowflake()),
    Column("at", UTCDateTime()),
    Column("doc", PortableJSON()),
)


@pytest.fixture
async def probe_db(db: Database) -> AsyncIterator[Database]:
    async with db.engine.begin() as conn:
        await conn.run_sync(probe_md.drop_all)
        await conn.run_sync(probe_md.create_all)
    yield db
    async with db.engine.begin() as conn:
        await conn.run_sync(probe_md.drop_all)


async def _roundtrip(db: Database, **values: object) -> dict:
    async with db.session() as s:
        new_id = (await s.execute(insert(probe).values(**values).returning(probe.c.id))).scalar_one()
    async with db.session(read_only=True) as s:
        return dict((await s.execute(select(probe).where(probe.c.id == new_id))).mappings().one())


@pytest.mark.parametrize("value", [0, 1, 2**53 + 1, 2**62 + 12345, 2**63 - 1, 1155376138376429610])
async def test_snowflakes_round_trip_exactly(probe_db: Database, value: int) -> None:
    row = await _roundtrip(probe_db, snowflake=value)
    assert row["snowflake"] == value
    assert type(row["snowflake"]) is int


async def test_snowflake_out_of_range_is_refused(probe_db: Database) -> None:
    with pytest.raises(StatementError, match="snowflake out of range"):
        await _roundtrip(probe_db, snowflake=2**63)
    with pytest.raises(StatementError, match="snowflake out of range"):
        await _roundtrip(probe_db, snowflake=-1)


async def test_snowflake_filtering_above_2_53(probe_db: Database) -> None:
    big = 2**63 - 7
    await _roundtrip(probe_db, snowflake=big)
    await _roundtrip(probe_db, snowflake=big - 1)
    async with probe_db.session(read_only=True) as s:
        found = (await s.execute(select(probe.c.snowflake).where(probe.c.snowflake == big))).scalars().all()
    assert found == [big]


async def test_utc_datetime_returns_aware_utc(probe_db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    row = await _roundtrip(probe_db, at=local)
    assert row["at"].tzinfo is not None
    assert row["at"].utcoffset() == timedelta(0)
    assert row["at"] == local
    assert row["at"].hour == 12


async def test_naive_datetime_is_refused(probe_db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime refused"):
        await _roundtrip(probe_db, at=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


async def test_utc_ordering_across_offsets(probe_db: Database) -> None:
    early = datetime(2026, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-5)))  # 04:00 UTC next day
    late = datetime(2026, 1, 2, 5, 0, tzinfo=UTC)
    await _roundtrip(probe_db, at=late)
    await _roundtrip(probe_db, at=early)
    async with probe_db.session(read_only=True) as s:
        ordered = (await s.execute(select(probe.c.at).order_by(probe.c.at))).scalars().all()
    assert ordered == [early, late]


async def test_portable_json_round_trip(probe_db: Database) -> None:
    doc = {"roles": [1, 2, 3], "name": "Zoë ✨", "nested": {"ok": True, "n": None, "f": 1.5}}
    row = await _roundtrip(probe_db, doc=doc)
    assert row["doc"] == doc


async def test_portable_json_is_jsonb_on_postgresql(probe_db: Database) -> None:
    async with probe_db.session(read_only=True) as s:
        if probe_db.backend == "postgresql":
            declared = await s.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = '_gk_type_probe' AND column_name = 'doc'"
                )
            )
            assert declared == "jsonb"
        else:
            rows = (await s.execute(text("PRAGMA table_info(_gk_type_probe)"))).all()
            assert {r[1]: r[2] for r in rows}["doc"] == "JSON"


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))  # noqa: DTZ001
def test_utc_bind_is_lossless(value: datetime) -> None:
    """The bind/result pair (without a database) is the identity for aware UTC values."""
    from sqlalchemy.dialects import postgresql, sqlite

    t = UTCDateTime()
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        bound = t.process_bind_param(value, dialect)
        assert t.process_result_value(bound, dialect) == value
