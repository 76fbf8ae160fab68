from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
import tarfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from guildkeep.db import Database, migrate
from guildkeep.db import backup as bk
from guildkeep.gacha.models import Player
from guildkeep.identity.models import Guild, GuildMember, User
from guildkeep.identity.service import IdentityService
from guildkeep.leveling.models import Level


async def _seed(db: Database, users: int = 25) -> None:
    svc = IdentityService(db)
    await svc.get_or_create_guild(1, "Backup Guild")
    for i in range(users):
        await svc.upsert_member(1, 1000 + i, username=f"user{i}", roles=[i])


async def _count(db: Database, model: type) -> int:
    async with db.session(read_only=True) as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_backup_restore_verify_round_trip(db: Database, tmp_path: Path, database_url: str) -> None:
    await _seed(db)
    path = await bk.create_backup(db, tmp_path / "backups")
    assert bk.NAME_RE.match(path.name)
    assert path.name.endswith(f"-{db.backend}.tar.gz")
    manifest = bk.read_manifest(path)
    assert manifest["backend"] == db.backend
    assert manifest["tables"]["users"] == 25
    assert manifest["tables"]["guild_members"] == 25
    assert manifest["revisions"]

    report = await bk.verify_backup(path, scratch_url=database_url)
    assert report.ok, report.problems
    assert report.actual["users"] == 25

    # damage the live data, then restore
    svc = IdentityService(db)
    await svc.get_or_create_user(99999, username="added later")
    await svc.remove_member(1, 1000)
    await bk.restore_backup(db, path)
    assert await _count(db, User) == 25
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(Guild.name).where(Guild.id == 1)) == "Backup Guild"
        assert await s.scalar(select(User.id).where(User.id == 99999)) is None


async def test_backup_is_consistent_while_writing(db: Database, tmp_path: Path, database_url: str) -> None:
    """Writers keep inserting while the backup runs; the manifest matches what the snapshot holds."""
    await _seed(db, users=5)
    svc = IdentityService(db)
    stop = asyncio.Event()

    async def writer() -> int:
        n = 0
        while not stop.is_set():
            await svc.get_or_create_user(50_000 + n, username=f"w{n}")
            n += 1
        return n

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    path = await bk.create_backup(db, tmp_path)
    stop.set()
    written = await task
    assert written > 0
    report = await bk.verify_backup(path, scratch_url=database_url)
    assert report.ok, report.problems


async def test_verify_detects_a_tampered_manifest(db: Database, tmp_path: Path, database_url: str) -> None:
    await _seed(db, users=3)
    path = await bk.create_backup(db, tmp_path)
    manifest = bk.read_manifest(path)
    manifest["tables"]["users"] = 4
    data_dir = tmp_path / "unpacked"
    data_dir.mkdir()
    with tarfile.open(path, "r:gz") as tar:
        tar.extract(manifest["data"], data_dir, filter="data")
    forged = tmp_path / f"guildkeep-20260101T000000000000Z-{db.backend}.tar.gz"
    bk._pack(forged, manifest, data_dir / manifest["data"], manifest["data"])
    report = await bk.verify_backup(forged, scratch_url=database_url)
    assert not report.ok
    assert any("users: expected 4 rows, restored 3" in p for p in report.problems)


async def test_restore_refuses_other_backend_and_garbage(db: Database, tmp_path: Path) -> None:
    garbage = tmp_path / "guildkeep-20260101T000000000000Z-sqlite.tar.gz"
    garbage.write_bytes(b"not a tarball")
    with pytest.raises(bk.BackupError, match="could not be read"):
        await bk.restore_backup(db, garbage)
    with pytest.raises(bk.BackupError, match="No backup file"):
        await bk.restore_backup(db, tmp_path / "missing.tar.gz")


async def test_in_memory_database_cannot_be_backed_up(tmp_path: Path) -> None:
    memory = Database("sqlite+aiosqlite:///:memory:")
    try:
        with pytest.raises(bk.BackupError, match="in-memory"):
            await bk.create_backup(memory, tmp_path)
    finally:
        await memory.dispose()


def _fake_backup(directory: Path, when: datetime, backend: str = "sqlite") -> Path:
    path = directory / f"guildkeep-{when.strftime(bk._STAMP)}-{backend}.tar.gz"
    path.write_bytes(b"x")
    return path


def test_prune_by_count_and_age(tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    paths = [_fake_backup(tmp_path, now - timedelta(days=d)) for d in range(10)]  # newest first
    (tmp_path / "unrelated.txt").write_text("keep me")
    removed = bk.prune_backups(tmp_path, keep=5, max_age_days=0, now=now)
    assert sorted(removed) == sorted(paths[5:])
    removed = bk.prune_backups(tmp_path, keep=5, max_age_days=2.5, now=now)
    assert sorted(removed) == sorted(paths[3:5])
    assert [b.path for b in bk.list_backups(tmp_path)] == paths[:3]
    assert (tmp_path / "unrelated.txt").exists()


def test_prune_never_deletes_the_newest(tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    only = _fake_backup(tmp_path, now - timedelta(days=400))
    assert bk.prune_backups(tmp_path, keep=1, max_age_days=1, now=now) == []
    assert only.exists()
    with pytest.raises(bk.BackupError):
        bk.prune_backups(tmp_path, keep=0)


# --- content checksums ------------------------------------------------------------------------------

_T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


async def _seed_fixed(db: Database) -> None:
    """The same rows, to the microsecond, on any backend: JSON, booleans, floats, datetimes, snowflakes."""
    stamps = {"created_at": _T0, "updated_at": _T0}
    async with db.session() as s:
        await s.execute(insert(Guild).values(id=2**62 + 5, name="Chk Ü", joined_at=_T0, is_active=False,
                                             settings={"b": [1, 2.5, None], "a": {"z": True, "y": "é"}}, **stamps))
        for i in range(3):
            await s.execute(insert(User).values(id=10**17 + i, username=f"u{i}", first_seen_at=_T0,
                                                last_seen_at=_T0 + timedelta(hours=i), **stamps))
            await s.execute(insert(GuildMember).values(id=i + 1, guild_id=2**62 + 5, user_id=10**17 + i,
                                                       roles=[3, 1, 2], **stamps))
            await s.execute(insert(Player).values(id=i + 1, guild_id=2**62 + 5, user_id=10**17 + i,
                                                  faylen=1000 * (i + 1), virelite=7, gems=i,
                                                  policy_accepted_at=_T0, **stamps))
            await s.execute(insert(Level).values(id=i + 1, guild_id=2**62 + 5, user_id=10**17 + i, xp=123 + i,
                                                 xp_multiplier=1.1 + i, last_message_time=_T0, **stamps))


async def _tamper(path: Path, sql: str, tmp: Path, database_url: str) -> Path:
    """A copy of the backup at ``path`` whose data had ``sql`` applied, packed with the original manifest."""
    manifest = bk.read_manifest(path)
    work = tmp / f"tamper-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    with tarfile.open(path, "r:gz") as tar:
        tar.extract(manifest["data"], work, filter="data")
    data = work / manifest["data"]
    if manifest["backend"] == "sqlite":
        conn = sqlite3.connect(data)
        conn.execute(sql)
        conn.commit()
        conn.close()
    else:
        server = make_url(database_url)
        name = f"gk_tamper_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(bk._dsn(server))
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await bk._pg_restore_into(server, name, data, clean=False)
            conn = await asyncpg.connect(bk._dsn(server, name))
            await conn.execute(sql)
            await conn.close()
            data.unlink()
            await bk._run([bk._require("pg_dump"), "--format=custom", "--no-owner", "--file", str(data),
                           *bk._pg_args(server, name)], bk._pg_env(server))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    forged = tmp / f"guildkeep-20260101T000000000000Z-{manifest['backend']}-{uuid.uuid4().hex[:6]}.tar.gz"
    bk._pack(forged, manifest, data, manifest["data"])
    return forged


async def test_manifest_has_a_checksum_per_table(db: Database, tmp_path: Path, database_url: str) -> None:
    await _seed_fixed(db)
    path = await bk.create_backup(db, tmp_path)
    manifest = bk.read_manifest(path)
    assert set(manifest["checksums"]) == set(manifest["tables"])
    assert manifest["checksum_method"] == bk.CHECKSUM_METHOD
    report = await bk.verify_backup(path, scratch_url=database_url)
    assert report.ok, report.problems
    assert report.checked_contents
    assert {report.contents(t) for t in manifest["tables"]} == {"ok"}


async def test_verify_fails_when_balances_were_altered(db: Database, tmp_path: Path, database_url: str) -> None:
    await _seed_fixed(db)
    path = await bk.create_backup(db, tmp_path)
    forged = await _tamper(path, "UPDATE gacha_players SET faylen = faylen + 1000000 WHERE id = 2", tmp_path,
                           database_url)
    report = await bk.verify_backup(forged, scratch_url=database_url)
    assert report.expected == report.actual  # the row counts alone would have passed
    assert not report.ok
    assert [p.split(":")[0] for p in report.problems] == ["gacha_players"]
    assert report.contents("gacha_players") == "DIFFERENT"
    assert report.contents("guilds") == "ok"


async def test_old_backup_without_checksums_verifies_by_counts_with_a_note(
    db: Database, tmp_path: Path, database_url: str
) -> None:
    await _seed_fixed(db)
    path = await bk.create_backup(db, tmp_path)
    manifest = bk.read_manifest(path)
    del manifest["checksums"], manifest["checksum_method"]
    unpacked = tmp_path / "old"
    unpacked.mkdir()
    with tarfile.open(path, "r:gz") as tar:
        tar.extract(manifest["data"], unpacked, filter="data")
    old = tmp_path / f"guildkeep-20250101T000000000000Z-{db.backend}.tar.gz"
    bk._pack(old, manifest, unpacked / manifest["data"], manifest["data"])
    report = await bk.verify_backup(old, scratch_url=database_url)
    assert report.ok, report.problems
    assert not report.checked_contents
    assert any("only row counts" in note for note in report.notes)


async def test_checksums_are_the_same_on_sqlite_and_postgresql(
    sqlite_template: Path, pg_admin_url: str, tmp_path: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "same.db")
    name = f"gk_same_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(bk._dsn(make_url(pg_admin_url)))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    sums = {}
    try:
        for url in (f"sqlite+aiosqlite:///{tmp_path / 'same.db'}",
                    make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)):
            database = Database(url)
            try:
                await migrate.upgrade(database)
                await _seed_fixed(database)
                path = await bk.create_backup(database, tmp_path / database.backend)
                sums[database.backend] = bk.read_manifest(path)["checksums"]
            finally:
                await database.dispose()
    finally:
        admin = await asyncpg.connect(bk._dsn(make_url(pg_admin_url)))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    assert sums["sqlite"] == sums["postgresql"]
    empty = hashlib.sha256(b"").hexdigest()
    assert sums["sqlite"]["gacha_players"] != empty
    assert sums["sqlite"]["guilds"] != empty
