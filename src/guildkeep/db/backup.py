"""Backups: consistent, compressed, timestamped snapshots with a manifest of row counts and checksums.

A backup is one ``guildkeep-<UTC timestamp>-<backend>.tar.gz`` holding ``manifest.json`` (format,
backend, creation time, schema revisions, row count and content checksum per table) and the data: a
SQLite snapshot taken with the online backup API, or a PostgreSQL ``pg_dump`` custom-format archive
taken on an exported snapshot (the counts and checksums in the manifest come from that same snapshot).

A table's checksum is the SHA-256 of its rows in primary-key order, each row written as canonical JSON
(columns by name; datetimes as UTC ISO 8601, JSON values with sorted keys, booleans as true/false,
floats by their shortest repr, decimals normalised), so the same data gives the same checksum on SQLite
and PostgreSQL.

``verify`` restores into a scratch database and compares the row counts and checksums table by table;
a backup made before checksums existed is compared by row counts, with a note.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import MetaData, String, Table, create_engine, select, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from guildkeep import __version__
from guildkeep.db.database import Database
from guildkeep.db.instances import TABLE as INSTANCES_TABLE
from guildkeep.errors import DomainError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
NAME_RE = re.compile(r"^guildkeep-(\d{8}T\d{12}Z)-(sqlite|postgresql)\.tar\.gz$")
_STAMP = "%Y%m%dT%H%M%S%fZ"


class BackupError(DomainError):
    default_message = "The backup could not be completed."


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created_at: datetime
    backend: str
    size: int


@dataclass
class VerifyReport:
    path: Path
    backend: str
    expected: dict[str, int]
    actual: dict[str, int]
    problems: list[str] = field(default_factory=list)
    expected_checksums: dict[str, str] | None = None
    actual_checksums: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.expected == self.actual

    @property
    def checked_contents(self) -> bool:
        return self.expected_checksums is not None

    def contents(self, table: str) -> str:
        """``ok``, ``DIFFERENT`` or ``-`` (no checksum to compare) for one table."""
        if self.expected_checksums is None or table not in self.expected_checksums:
            return "-"
        return "ok" if self.actual_checksums.get(table) == self.expected_checksums[table] else "DIFFERENT"


# ---------------------------------------------------------------------------------------------
# content checksums (the same data gives the same digest on SQLite and PostgreSQL)

CHECKSUM_METHOD = "sha256-canonical-rows-1"
# Tables whose rows a backup leaves out: the heartbeats of the processes running when it was taken.
NOT_BACKED_UP = frozenset({INSTANCES_TABLE})


def _canonical(value: Any) -> Any:
    """A JSON-ready value that does not depend on the backend that returned ``value``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return str(value)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _key_order(conn: Connection, table: Table) -> list[Any]:
    """ORDER BY the primary key (every column when there is none), text in code-point order on both backends.

    SQLite compares text byte by byte (UTF-8, so by code point); PostgreSQL's ``C`` collation does the same.
    """
    columns = list(table.primary_key.columns) or list(table.columns)
    order: list[Any] = []
    for column in columns:
        if conn.dialect.name == "postgresql" and isinstance(column.type, String):
            order.append(column.collate("C"))
        else:
            order.append(column)
    return order


def table_checksums(conn: Connection, tables: list[str], empty: frozenset[str] = frozenset()) -> dict[str, str]:
    """The content checksum of each table (synchronous SQLAlchemy connection, SQLite or PostgreSQL).

    Rows are streamed in key order, so a table of any size is hashed in constant memory. Tables in ``empty``
    are taken as empty (their rows are left out of the backup).
    """
    metadata = MetaData()
    out = {}
    for name in tables:
        digest = hashlib.sha256()
        if name not in empty:
            table = Table(name, metadata, autoload_with=conn)
            stmt = select(table).order_by(*_key_order(conn, table))
            result = conn.execution_options(stream_results=True, yield_per=2_000).execute(stmt)
            for row in result:
                digest.update(_dump({key: _canonical(v) for key, v in row._mapping.items()}).encode())
                digest.update(b"\n")
        out[name] = digest.hexdigest()
    return out


def _sqlite_checksums(path: Path, tables: list[str]) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return table_checksums(conn, tables)
    finally:
        engine.dispose()


async def _pg_checksums(url: URL, tables: list[str], *, snapshot: str | None = None) -> dict[str, str]:
    """Checksums on PostgreSQL; with ``snapshot`` (exported by another transaction) they read exactly that state."""
    engine = create_async_engine(url.set(drivername="postgresql+asyncpg"), poolclass=NullPool)
    try:
        async with engine.connect() as plain:
            conn = plain
            if snapshot is not None:
                conn = await plain.execution_options(isolation_level="REPEATABLE READ")
                await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            result = await conn.run_sync(table_checksums, tables, NOT_BACKED_UP)
            await conn.rollback()
            return result
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------
# listing and retention


def backup_dir_problem(backup_dir: Path, *, write: bool = True) -> str | None:
    """Why backups cannot be written to (or, ``write=False``, listed from) ``backup_dir``; None when they can.

    Creates nothing.
    """
    path = Path(backup_dir)
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory"
        target = path
    else:
        target = path.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            return f"{path} cannot be created: {target} is not a directory"
    if not write:
        return None
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        return f"{path} is not writable ({exc.strerror or exc})"
    return None


def list_backups(backup_dir: Path) -> list[BackupInfo]:
    """Backups in ``backup_dir``, newest first."""
    if not backup_dir.is_dir():
        return []
    found = []
    for entry in backup_dir.iterdir():
        match = NAME_RE.match(entry.name)
        if not match or not entry.is_file():
            continue
        created = datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)
        found.append(BackupInfo(entry, created, match.group(2), entry.stat().st_size))
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def prune_backups(
    backup_dir: Path, *, keep: int, max_age_days: float = 0, now: datetime | None = None
) -> list[Path]:
    """Delete backups beyond the newest ``keep`` and those older than ``max_age_days`` (0 = no age limit).

    The newest backup is never deleted.
    """
    if keep < 1:
        raise BackupError("Retention must keep at least one backup.")
    now = now or datetime.now(UTC)
    backups = list_backups(backup_dir)
    removed = []
    for index, info in enumerate(backups):
        too_many = index >= keep
        too_old = max_age_days > 0 and now - info.created_at > timedelta(days=max_age_days)
        if index > 0 and (too_many or too_old):
            info.path.unlink(missing_ok=True)
            removed.append(info.path)
    if removed:
        log.info("pruned %d old backup(s) from %s", len(removed), backup_dir)
    return removed


# ---------------------------------------------------------------------------------------------
# SQLite


def _sqlite_path(db: Database) -> Path:
    if db.is_memory:
        raise BackupError("The in-memory database keeps nothing on disk and cannot be backed up.")
    return Path(db.url.database or "")


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def _sqlite_revisions(conn: sqlite3.Connection) -> list[str]:
    try:
        return sorted(row[0] for row in conn.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.OperationalError:
        return []


def _sqlite_snapshot(source: Path, target: Path) -> tuple[dict[str, int], list[str], dict[str, str]]:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # one step: a consistent copy even while the bot writes (WAL)
        for table in NOT_BACKED_UP:
            if dst.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone():
                dst.execute(f'DELETE FROM "{table}"')
        dst.commit()
        counts = _sqlite_counts(dst)
        revisions = _sqlite_revisions(dst)
    finally:
        dst.close()
        src.close()
    return counts, revisions, _sqlite_checksums(target, sorted(counts))


def _sqlite_copy_into(source: Path, target: Path) -> None:
    """Copy the backup's database file over ``target``, after checking it; a damaged file changes nothing."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        try:
            check = src.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the backup's database is damaged: {exc}") from exc
        if check != "ok":
            raise BackupError(f"the backup's database is damaged: {check}")
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _pg_args(url: URL, database: str | None = None) -> list[str]:
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        args += ["--username", url.username]
    args += ["--dbname", database or url.database or "postgres"]
    return args


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise BackupError(
            f"`{tool}` is not installed; PostgreSQL backups need the PostgreSQL client tools "
            "(Debian/Ubuntu: apt-get install postgresql-client)."
        )
    return found


def _dsn(url: URL, database: str | None = None) -> str:
    return url.set(drivername="postgresql", database=database or url.database).render_as_string(
        hide_password=False
    )


async def _pg_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    counts = {}
    for row in rows:
        name = row["tablename"]
        counts[name] = await conn.fetchval(f'SELECT count(*) FROM "{name}"')
    return counts


async def _pg_revisions(conn: asyncpg.Connection) -> list[str]:
    exists = await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not exists:
        return []
    return sorted(r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version"))


async def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await proc.communicate()
    if proc.returncode != 0:
        detail = " ".join(err.decode(errors="replace").split())[:500]
        raise BackupError(f"`{Path(cmd[0]).name}` failed: {detail}")


async def _pg_snapshot(db: Database, target: Path) -> tuple[dict[str, int], list[str], dict[str, str]]:
    pg_dump = _require("pg_dump")
    conn = await asyncpg.connect(_dsn(db.url))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = await _pg_counts(conn)
            counts.update({table: 0 for table in NOT_BACKED_UP if table in counts})
            revisions = await _pg_revisions(conn)
            checksums = await _pg_checksums(db.url, sorted(counts), snapshot=snapshot)
            await _run(
                [pg_dump, "--format=custom", "--no-owner", f"--snapshot={snapshot}", "--file", str(target),
                 *(f"--exclude-table-data={table}" for table in sorted(NOT_BACKED_UP)), *_pg_args(db.url)],
                _pg_env(db.url),
            )
    finally:
        await conn.close()
    return counts, revisions, checksums


async def _pg_restore_into(url: URL, database: str | None, dump: Path, *, clean: bool) -> None:
    pg_restore = _require("pg_restore")
    cmd = [pg_restore, "--no-owner", "--single-transaction", "--exit-on-error", *_pg_args(url, database)]
    if clean:
        cmd += ["--clean", "--if-exists"]
    await _run([*cmd, str(dump)], _pg_env(url))


# ---------------------------------------------------------------------------------------------
# the public operations


def _pack(target: Path, manifest: dict[str, Any], data: Path, data_name: str) -> None:
    tmp = target.with_name(target.name + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        info.mtime = int(datetime.now(UTC).timestamp())
        tar.addfile(info, io.BytesIO(raw))
        tar.add(data, arcname=data_name)
    tmp.replace(target)


def _check_manifest(name: str, manifest: Any) -> dict[str, Any]:
    """The manifest if it has the shape guildkeep writes; else a `BackupError` saying what is wrong."""
    if not isinstance(manifest, dict):
        raise BackupError(f"{name} is damaged: its manifest is not a JSON object.")
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{name} has backup format {manifest.get('format')!r}, expected {FORMAT_VERSION}.")
    if manifest.get("backend") not in ("sqlite", "postgresql"):
        raise BackupError(f"{name} is damaged: its manifest names no known backend ({manifest.get('backend')!r}).")
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in tables.items()
    ):
        raise BackupError(f"{name} is damaged: its manifest's tables are not a row count per table.")
    checksums = manifest.get("checksums")
    if checksums is not None and not (
        isinstance(checksums, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in checksums.items())
    ):
        raise BackupError(f"{name} is damaged: its manifest's checksums are not a digest per table.")
    data_name = manifest.get("data")
    if not isinstance(data_name, str) or not data_name or "/" in data_name or data_name.startswith("."):
        raise BackupError(f"{name} is damaged: its manifest names no data file.")
    return manifest


def _read_manifest(tar: tarfile.TarFile, name: str) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
    except KeyError:
        raise BackupError(f"{name} is not a guildkeep backup (no manifest).") from None
    if member is None:
        raise BackupError(f"{name} is damaged: its manifest is not a file.")
    try:
        manifest = json.loads(member.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{name} is damaged: its manifest is not JSON ({exc}).") from exc
    return _check_manifest(name, manifest)


_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


def _unpack(path: Path, into: Path) -> tuple[dict[str, Any], Path]:
    if not path.is_file():
        raise BackupError(f"No backup file at {path}.")
    try:
        with tarfile.open(path, "r:gz") as tar:
            manifest = _read_manifest(tar, path.name)
            data_name = manifest["data"]
            try:
                member = tar.getmember(data_name)
            except KeyError:
                raise BackupError(f"{path.name} is damaged: its data file is missing.") from None
            if not member.isfile():
                raise BackupError(f"{path.name} is damaged: its data file is not a file.")
            tar.extract(member, into, filter="data")
    except _READ_ERRORS as exc:
        raise BackupError(f"{path.name} could not be read: {exc}") from exc
    return manifest, into / data_name


async def create_backup(db: Database, backup_dir: Path) -> Path:
    """Write a new backup of ``db`` into ``backup_dir`` and return its path."""
    backup_dir = Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    target = backup_dir / f"guildkeep-{created.strftime(_STAMP)}-{db.backend}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="guildkeep-backup-") as tmp:
        if db.backend == "sqlite":
            data_name = "database.sqlite"
            data = Path(tmp) / data_name
            counts, revisions, checksums = await asyncio.to_thread(_sqlite_snapshot, _sqlite_path(db), data)
        else:
            data_name = "database.pgdump"
            data = Path(tmp) / data_name
            counts, revisions, checksums = await _pg_snapshot(db, data)
        manifest = {
            "format": FORMAT_VERSION,
            "backend": db.backend,
            "created_at": created.isoformat(),
            "guildkeep_version": __version__,
            "revisions": revisions,
            "tables": counts,
            "checksums": checksums,
            "checksum_method": CHECKSUM_METHOD,
            "data": data_name,
        }
        await asyncio.to_thread(_pack, target, manifest, data, data_name)
    log.info("backup written: %s (%d tables, %d rows)", target, len(counts), sum(counts.values()))
    return target


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the backup at ``path`` (a `BackupError` in one line if it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"No backup file at {path}.")
    try:
        with tarfile.open(path, "r:gz") as tar:
            return _read_manifest(tar, path.name)
    except _READ_ERRORS as exc:
        raise BackupError(f"{path.name} could not be read: {exc}") from exc


async def restore_backup(db: Database, path: Path) -> dict[str, Any]:
    """Replace the contents of ``db`` with the backup at ``path``. Stop the bot first."""
    with tempfile.TemporaryDirectory(prefix="guildkeep-restore-") as tmp:
        manifest, data = await asyncio.to_thread(_unpack, Path(path), Path(tmp))
        if manifest["backend"] != db.backend:
            raise BackupError(
                f"{Path(path).name} is a backup of a {manifest['backend']} database; this one is {db.backend}."
            )
        await db.dispose()  # no pooled connection may hold the old file or tables
        try:
            if db.backend == "sqlite":
                await asyncio.to_thread(_sqlite_copy_into, data, _sqlite_path(db))
            else:
                await _pg_restore_into(db.url, db.url.database, data, clean=True)
        except BackupError as exc:
            raise BackupError(f"{Path(path).name} could not be restored, nothing was changed: {exc.message}") from exc
    log.info("restored %s into %s", path, db.url.render_as_string(hide_password=True))
    return manifest


async def verify_backup(path: Path, *, scratch_url: URL | str | None = None) -> VerifyReport:
    """Restore ``path`` into a scratch database; compare row counts and content checksums with the manifest.

    For PostgreSQL backups ``scratch_url`` names the server to restore on (any database on it;
    a temporary database is created and dropped). A file that does not restore raises `BackupError`.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="guildkeep-verify-") as tmp:
        manifest, data = await asyncio.to_thread(_unpack, path, Path(tmp))
        expected = dict(manifest["tables"])
        expected_sums = manifest.get("checksums")
        if expected_sums is not None and manifest.get("checksum_method") != CHECKSUM_METHOD:
            raise BackupError(f"{path.name} has checksums of an unknown kind ({manifest.get('checksum_method')!r}).")
        if manifest["backend"] == "sqlite":

            def check() -> tuple[dict[str, int], dict[str, str]]:
                scratch = Path(tmp) / "scratch.sqlite"
                _sqlite_copy_into(data, scratch)
                conn = sqlite3.connect(scratch)
                try:
                    counts = _sqlite_counts(conn)
                finally:
                    conn.close()
                return counts, (_sqlite_checksums(scratch, sorted(counts)) if expected_sums is not None else {})

            try:
                actual, actual_sums = await asyncio.to_thread(check)
            except (sqlite3.DatabaseError, BackupError) as exc:
                raise BackupError(f"{path.name} does not restore: {exc}") from exc
        else:
            if scratch_url is None:
                raise BackupError("Verifying a PostgreSQL backup needs a PostgreSQL server to restore on.")
            from sqlalchemy.engine import make_url

            server = make_url(scratch_url) if isinstance(scratch_url, str) else scratch_url
            if server.get_backend_name() != "postgresql":
                raise BackupError(
                    f"{path.name} is a PostgreSQL backup; verifying it needs GUILDKEEP_DATABASE_URL to point at a "
                    "PostgreSQL server to restore on."
                )
            name = f"gk_verify_{uuid.uuid4().hex[:12]}"
            admin = await asyncpg.connect(_dsn(server))
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            try:
                try:
                    await _pg_restore_into(server, name, data, clean=False)
                except BackupError as exc:
                    raise BackupError(f"{path.name} does not restore: {exc.message}") from exc
                conn = await asyncpg.connect(_dsn(server, name))
                try:
                    actual = await _pg_counts(conn)
                finally:
                    await conn.close()
                actual_sums = (
                    await _pg_checksums(server.set(database=name), sorted(actual)) if expected_sums is not None else {}
                )
            finally:
                admin = await asyncpg.connect(_dsn(server))
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()
    report = VerifyReport(path, manifest["backend"], expected, actual, expected_checksums=expected_sums,
                          actual_checksums=actual_sums)
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want != got:
            report.problems.append(f"{table}: expected {want} rows, restored {got}")
        elif expected_sums is not None and report.contents(table) != "ok":
            report.problems.append(f"{table}: contents differ from the backup's checksum (altered or damaged data)")
    if expected_sums is None:
        report.notes.append(
            f"{path.name} was made before backups carried checksums: only row counts were compared, not contents"
        )
    return report


async def run_scheduled_backup(db: Database, settings: Any) -> Path:
    """One automatic backup and the retention that follows it (the scheduler's ``core.backup`` job).

    A failure raises, so the scheduler retries it with backoff and records the error.
    """
    path = await create_backup(db, settings.backup_dir)
    await asyncio.to_thread(
        prune_backups, Path(settings.backup_dir), keep=settings.backup_keep,
        max_age_days=settings.backup_max_age_days,
    )
    return path
