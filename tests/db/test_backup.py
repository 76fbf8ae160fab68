from __future__ import annotations

import asyncio
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.db import backup as bk
from guildkeep.identity.models import Guild, User
from guildkeep.identity.service import IdentityService


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
