from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import inspect, update
from typer.testing import CliRunner

from guildkeep import __version__
from guildkeep.cli import app
from guildkeep.db import Database, migrate
from guildkeep.db import backup as bk
from guildkeep.identity.service import IdentityService

T = TypeVar("T")

runner = CliRunner()


@pytest.fixture
def cli_env(empty_database_url: str, isolated_env: Path) -> dict[str, str]:
    tmp_path = isolated_env
    return {
        "GUILDKEEP_DATABASE_URL": empty_database_url,
        "GUILDKEEP_BACKUP_DIR": str(tmp_path / "backups"),
        "GUILDKEEP_LOG_LEVEL": "WARNING",
    }


def _ok(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_db_commands_end_to_end(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The issue's acceptance path: upgrade, check, backup, verify — on an empty database of each backend."""
    assert "database at:" in _ok(["db", "upgrade"], cli_env)  # every module branch's head, not only identity
    assert "(head)" in _ok(["db", "current"], cli_env)
    assert "schema matches the models" in _ok(["db", "check"], cli_env)
    assert "0001_identity" in _ok(["db", "history"], cli_env)
    backup_path = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    assert backup_path.exists()
    assert "OK:" in _ok(["db", "verify", str(backup_path)], cli_env)
    assert backup_path.name in _ok(["db", "backups"], cli_env)
    assert "restored" in _ok(["db", "restore", str(backup_path), "--yes"], cli_env)
    assert "removed 0 backup(s)" in _ok(["db", "prune"], cli_env)
    _ok(["db", "downgrade", "base", "--yes"], cli_env)
    result = runner.invoke(app, ["db", "check"], env=cli_env)
    assert result.exit_code == 1
    assert "run `guildkeep db upgrade`" in result.output


def test_bad_setting_is_one_clear_line(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "current"], env={**cli_env, "GUILDKEEP_POOL_SIZE": "lots"})
    assert result.exit_code == 2
    assert "invalid setting GUILDKEEP_POOL_SIZE" in result.output


def test_verify_missing_file_is_clear(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "verify", "nope.tar.gz"], env=cli_env)
    assert result.exit_code == 1
    assert "No backup file" in result.output


# --- shared helpers for operator-command tests ------------------------------------------------


def _fails(args: list[str], env: dict[str, str], input: str | None = None) -> str:
    """The command fails with a non-zero code and a message, never a traceback."""
    result = runner.invoke(app, args, env=env, input=input)
    assert result.exit_code != 0, (args, result.output)
    assert isinstance(result.exception, SystemExit), (args, result.output, result.exception)
    assert "Traceback" not in result.output
    return result.output


def _run_async(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database(url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _seed_guild(url: str, guild_id: int = 7, name: str = "Kept Guild") -> None:
    async def work(db: Database) -> None:
        await IdentityService(db).get_or_create_guild(guild_id, name)

    _run_async(url, work)


def _tables(url: str) -> set[str]:
    async def work(db: Database) -> set[str]:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))

    return _run_async(url, work)


# --- db revision ---------------------------------------------------------------------------------


def test_revision_new_branch_starts_a_module_branch_at_identity(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`--new-branch` writes the first revision of a new module's branch; `--head` still continues one."""
    from alembic.script import ScriptDirectory

    shipped = sorted(p.name for p in migrate.VERSIONS_DIR.glob("*.py"))
    versions = tmp_path / "versions"
    _ok(["db", "upgrade"], cli_env)
    out = _ok(["db", "revision", "-m", "poll tables", "--new-branch", "polls", "--version-path", str(versions)],
              cli_env)
    [written] = versions.glob("*.py")
    assert written.name == "polls_0001_poll_tables.py"
    assert str(written) in out
    script = ScriptDirectory.from_config(migrate.alembic_config(versions))
    rev = script.get_revision("polls@head")
    assert (rev.revision, rev.down_revision, set(rev.branch_labels)) == ("polls_0001", "0001_identity", {"polls"})
    assert set(script.get_heads()) == {*migrate.heads(), "polls_0001"}  # a new head beside every other branch

    # the same branch twice, a bad name, or --new-branch with --head: one clear line, nothing written
    for args, problem in (
        (["--new-branch", "polls"], "already exists"),
        (["--new-branch", "Polls!"], "not a branch name"),
        (["--new-branch", "votes", "--head", "leveling@head"], "do not combine"),
    ):
        failed = _fails(["db", "revision", "-m", "again", *args, "--version-path", str(versions)], cli_env)
        assert problem in failed
        assert len(failed.strip().splitlines()) == 1
    assert [p.name for p in versions.glob("*.py")] == [written.name]

    # without --new-branch, as before: --head continues an existing module's branch
    leveling_head = ScriptDirectory.from_config(migrate.alembic_config()).get_revision("leveling@head").revision
    more = tmp_path / "more"  # apart from polls_0001, which this database has not applied
    _ok(["db", "revision", "-m", "more levels", "--head", "leveling@head", "--rev-id", "leveling_next",
         "--version-path", str(more)], cli_env)
    script = ScriptDirectory.from_config(migrate.alembic_config(more))
    assert script.get_revision("leveling_next").down_revision == leveling_head
    assert script.get_revision("leveling@head").revision == "leveling_next"
    assert sorted(p.name for p in migrate.VERSIONS_DIR.glob("*.py")) == shipped  # the package is untouched


# --- db downgrade -------------------------------------------------------------------------------


def test_downgrade_refuses_without_yes_when_no_terminal(cli_env: dict[str, str]) -> None:
    _ok(["db", "upgrade"], cli_env)
    _seed_guild(cli_env["GUILDKEEP_DATABASE_URL"])
    out = _fails(["db", "downgrade", "base"], cli_env)
    assert "--yes" in out
    assert len(out.strip().splitlines()) == 1
    assert "guilds" in _tables(cli_env["GUILDKEEP_DATABASE_URL"])
    assert "(head)" in _ok(["db", "current"], cli_env)
    assert not (Path(cli_env["GUILDKEEP_BACKUP_DIR"])).exists()


def test_downgrade_with_yes_takes_a_backup_first(cli_env: dict[str, str]) -> None:
    _ok(["db", "upgrade"], cli_env)
    _seed_guild(cli_env["GUILDKEEP_DATABASE_URL"])
    out = _ok(["db", "downgrade", "base", "--yes"], cli_env)
    backups = list(Path(cli_env["GUILDKEEP_BACKUP_DIR"]).glob("guildkeep-*.tar.gz"))
    assert len(backups) == 1
    assert str(backups[0]) in out
    assert "guilds" not in _tables(cli_env["GUILDKEEP_DATABASE_URL"])
    assert bk.read_manifest(backups[0])["tables"]["guilds"] == 1
    # the backup brings everything back
    _ok(["db", "restore", str(backups[0]), "--yes"], cli_env)
    assert "(head)" in _ok(["db", "current"], cli_env)


def _branch(label: str) -> list[str]:
    """The revisions of one module's migration branch, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    revs = [r.revision for r in script.iterate_revisions(f"{label}@head", "0001_identity")
            if r.revision != "0001_identity"]
    return list(reversed(revs))


def test_downgrade_accepts_relative_revisions(cli_env: dict[str, str]) -> None:
    leveling, gacha_head = _branch("leveling"), _branch("gacha")[-1]
    _ok(["db", "upgrade", leveling[0]], cli_env)
    assert "database at: 0001_identity" in _ok(["db", "downgrade", "-1", "--yes"], cli_env)
    _ok(["db", "upgrade"], cli_env)
    # several heads: -1 alone is ambiguous, and the message says what to type instead
    out = _fails(["db", "downgrade", "-1", "--yes"], cli_env)
    assert "leveling@-1" in out
    for step in reversed(range(len(leveling))):  # one revision of the branch at a time, the others stay
        out = _ok(["db", "downgrade", "--yes", "leveling@-1"], cli_env)
        assert leveling[step] not in out
        assert (leveling[step - 1] in out) if step else ("leveling_" not in out)
        assert gacha_head in out
    # reverting a branch that is not applied, or an unknown revision: one clear line, nothing changes
    assert "leveling" in _fails(["db", "downgrade", "leveling@-1", "--yes"], cli_env)
    assert "nonsense" in _fails(["db", "downgrade", "nonsense", "--yes"], cli_env)
    assert "nonsense" in _fails(["db", "upgrade", "nonsense"], cli_env)


def test_downgrade_with_nothing_to_revert_needs_no_confirmation(cli_env: dict[str, str]) -> None:
    assert "nothing to revert" in _ok(["db", "downgrade", "base"], cli_env)


def _guildkeep_on_a_terminal(args: list[str], env: dict[str, str], typed: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``guildkeep`` with a pseudo-terminal as stdin, typing ``typed`` into it."""
    master, slave = os.openpty()
    try:
        os.write(master, typed.encode())
        return subprocess.run(
            [str(Path(sys.executable).with_name("guildkeep")), *args],
            check=False, stdin=slave, capture_output=True, text=True, timeout=120,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("GUILDKEEP_")}, **env},
        )
    finally:
        os.close(slave)
        os.close(master)


def test_downgrade_on_a_terminal_asks_for_the_typed_word(cli_env: dict[str, str]) -> None:
    _ok(["db", "upgrade"], cli_env)
    _seed_guild(cli_env["GUILDKEEP_DATABASE_URL"])
    wrong = _guildkeep_on_a_terminal(["db", "downgrade", "base"], cli_env, "yes\n")
    assert wrong.returncode == 1, wrong.stderr
    assert "not confirmed" in wrong.stderr
    assert "guilds" in _tables(cli_env["GUILDKEEP_DATABASE_URL"])
    right = _guildkeep_on_a_terminal(["db", "downgrade", "base"], cli_env, "downgrade\n")
    assert right.returncode == 0, right.stderr
    assert "backup taken before the downgrade" in right.stdout
    assert "guilds" not in _tables(cli_env["GUILDKEEP_DATABASE_URL"])


def test_every_numeric_option_refuses_nonsense_in_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    for bad in (["--max-age-days", "-1"], ["--max-age-days", "nan"], ["--max-age-days", "inf"], ["--keep", "0"],
                ["--keep", "-3"]):
        out = _fails(["db", "prune", *bad], cli_env)
        assert bad[0] in out or "at least one" in out, (bad, out)
    script = tmp_path / "script.txt"
    script.write_bytes(b"\xff\xfe not utf-8 \x80")
    out = _fails(["playground", "--script", str(script)], cli_env)
    assert "UTF-8" in out


# --- corrupt and missing backups ---------------------------------------------------------------


def _repack(source: Path, target: Path, *, manifest: object = None, data: bytes | None = None) -> Path:
    """A copy of the backup ``source`` with its manifest and/or data file replaced."""
    with tarfile.open(source, "r:gz") as tar:
        original = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        data_name = original["data"]
        payload = tar.extractfile(data_name).read() if data is None else data  # type: ignore[union-attr]
    raw = json.dumps(original if manifest is None else manifest).encode()
    with tarfile.open(target, "w:gz") as tar:
        for name, content in (("manifest.json", raw), (data_name, payload)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return target


def test_restore_and_verify_of_corrupt_files_say_what_is_wrong(cli_env: dict[str, str], tmp_path: Path) -> None:
    _ok(["db", "upgrade"], cli_env)
    _seed_guild(cli_env["GUILDKEEP_DATABASE_URL"])
    good = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    manifest = bk.read_manifest(good)
    raw = good.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.tar.gz").write_bytes(b"this is not a backup")
    (bad / "truncated.tar.gz").write_bytes(raw[: len(raw) // 2])
    (bad / "gzip-not-tar.tar.gz").write_bytes(gzip.compress(b"x" * 5000))
    cases = {
        "garbage.tar.gz": "could not be read",
        "truncated.tar.gz": "could not be read",
        "gzip-not-tar.tar.gz": "could not be read",
        _repack(good, bad / "list-manifest.tar.gz", manifest=[]).name: "manifest",
        _repack(good, bad / "no-backend.tar.gz",
                manifest={k: v for k, v in manifest.items() if k != "backend"}).name: "backend",
        _repack(good, bad / "bad-tables.tar.gz", manifest={**manifest, "tables": "x"}).name: "tables",
        _repack(good, bad / "bad-count.tar.gz", manifest={**manifest, "tables": {"guilds": True}}).name: "tables",
        _repack(good, bad / "other-backend.tar.gz", manifest={
            **manifest, "backend": "postgresql" if manifest["backend"] == "sqlite" else "sqlite"}).name: "",
        _repack(good, bad / "damaged-data.tar.gz", data=b"SQLite format 3\x00" + b"\x01" * 8192).name: "restore",
    }
    for name, what in cases.items():
        for command in (["db", "restore", str(bad / name), "--yes"], ["db", "verify", str(bad / name)]):
            out = _fails(command, cli_env)
            assert name in out, (command, out)
            assert what in out, (command, out)
            assert len(out.strip().splitlines()) == 1, (command, out)
    for command in (["db", "restore", str(tmp_path / "missing.tar.gz"), "--yes"],
                    ["db", "verify", str(tmp_path / "missing.tar.gz")], ["db", "verify", str(tmp_path)]):
        assert "No backup file" in _fails(command, cli_env)
    # nothing was changed by the failed restores
    assert "guilds" in _tables(cli_env["GUILDKEEP_DATABASE_URL"])
    _seed_guild(cli_env["GUILDKEEP_DATABASE_URL"], guild_id=8)
    assert "restored" in _ok(["db", "restore", str(good), "--yes"], cli_env)


def test_restore_without_yes_and_no_terminal_refuses(cli_env: dict[str, str]) -> None:
    _ok(["db", "upgrade"], cli_env)
    good = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    out = _fails(["db", "restore", str(good)], cli_env)
    assert "--yes" in out
    assert len(out.strip().splitlines()) == 1


# --- settings that only show their problem when used ---------------------------------------------


def _one_line_naming(out: str, setting: str) -> None:
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert setting in lines[0], out


def _without_dac(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``guildkeep`` as root without the capabilities that bypass file permissions (like any other user)."""
    return subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
         str(Path(sys.executable).with_name("guildkeep")), *args],
        check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("GUILDKEEP_")}, **env},
    )


STARTS = (["run"], ["playground", "--script", "script.txt"])


def test_bad_gacha_config_dir_is_one_clear_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "script.txt").write_text(":help\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    malformed = tmp_path / "malformed"
    malformed.mkdir()
    (malformed / "esprits.json").write_text('{"esprits": [')
    latin1 = tmp_path / "latin1"
    latin1.mkdir()
    (latin1 / "game_settings.json").write_bytes(b'{"name": "caf\xe9"}')
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(a_file): "not a directory",
        str(malformed): "esprits.json",
        str(latin1): "game_settings.json",
    }
    for value, what in cases.items():
        for command in STARTS:
            out = _fails(command, {**cli_env, "GUILDKEEP_GACHA_CONFIG_DIR": value})
            _one_line_naming(out, "GUILDKEEP_GACHA_CONFIG_DIR")
            assert what in out, (value, out)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "esprits.json").write_text("{}")
    locked.chmod(0)
    try:
        for command in STARTS:
            proc = _without_dac(command, {**cli_env, "GUILDKEEP_GACHA_CONFIG_DIR": str(locked)})
            assert proc.returncode != 0
            _one_line_naming(proc.stderr, "GUILDKEEP_GACHA_CONFIG_DIR")
            assert "cannot be read" in proc.stderr
            assert "Traceback" not in proc.stderr + proc.stdout
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(("count", "ids", "what"), [
    (None, "[0]", "GUILDKEEP_SHARD_COUNT"),
    ("2", "[5]", "outside"),
    ("2", "[-1]", "outside"),
    ("4", "[1,1]", "twice"),
    ("4", "[0,1]", "one shard per process"),
    ("2", "zero", "GUILDKEEP_SHARD_IDS"),
])
def test_bad_shard_settings_are_one_clear_line(cli_env: dict[str, str], tmp_path: Path, count: str | None,
                                               ids: str, what: str) -> None:
    (tmp_path / "script.txt").write_text(":help\n")
    env = {**cli_env, "GUILDKEEP_SHARD_IDS": ids, **({"GUILDKEEP_SHARD_COUNT": count} if count else {})}
    for command in (*STARTS, ["db", "upgrade"]):
        out = _fails(command, env)
        _one_line_naming(out, "GUILDKEEP_SHARD_IDS")
        assert what in out, out


def test_shard_ids_accept_a_plain_number(cli_env: dict[str, str]) -> None:
    _ok(["db", "current"], {**cli_env, "GUILDKEEP_SHARD_COUNT": "2", "GUILDKEEP_SHARD_IDS": "1"})


def test_bad_backup_dir_is_one_clear_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "script.txt").write_text(":help\n")
    _ok(["db", "upgrade"], cli_env)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = {str(a_file): "not a directory", "/sys/guildkeep-backups": "not writable",
             str(a_file / "below"): "not a directory"}
    commands = [*STARTS, ["db", "backup"], ["db", "prune"], ["db", "downgrade", "base", "--yes"]]
    for value, what in cases.items():
        for command in commands:
            out = _fails(command, {**cli_env, "GUILDKEEP_BACKUP_DIR": value})
            _one_line_naming(out, "GUILDKEEP_BACKUP_DIR")
            assert what in out, (command, value, out)
        if what != "not writable":  # listing needs a directory, not write access
            out = _fails(["db", "backups"], {**cli_env, "GUILDKEEP_BACKUP_DIR": value})
            _one_line_naming(out, "GUILDKEEP_BACKUP_DIR")
    assert "(head)" in _ok(["db", "current"], cli_env)  # the refused downgrade changed nothing
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = _without_dac(["db", "backup"], {**cli_env, "GUILDKEEP_BACKUP_DIR": str(locked)})
        assert proc.returncode != 0
        _one_line_naming(proc.stderr, "GUILDKEEP_BACKUP_DIR")
        assert "not writable" in proc.stderr
    finally:
        locked.chmod(0o755)


# --- verify compares contents ----------------------------------------------------------------------


def test_verify_names_the_table_whose_contents_were_altered(cli_env: dict[str, str], tmp_path: Path) -> None:
    from tests.db.test_backup import _seed_fixed, _tamper

    url = cli_env["GUILDKEEP_DATABASE_URL"]
    _ok(["db", "upgrade"], cli_env)
    _run_async(url, _seed_fixed)
    good = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    assert "row count and contents intact" in _ok(["db", "verify", str(good)], cli_env)
    forged = asyncio.run(_tamper(good, "UPDATE gacha_players SET gems = 999 WHERE id = 1", tmp_path, url))
    result = runner.invoke(app, ["db", "verify", str(forged)], env=cli_env)
    assert result.exit_code == 1, result.output
    assert "problem: gacha_players: contents differ" in result.output
    assert "Traceback" not in result.output
    # an old backup (no checksums) still verifies, by counts, and says so
    manifest = bk.read_manifest(good)
    del manifest["checksums"], manifest["checksum_method"]
    old = _repack(good, tmp_path / "old.tar.gz", manifest=manifest)
    out = _ok(["db", "verify", str(old)], cli_env)
    assert "only row counts were compared" in out
    assert "row count intact" in out


# --- a running bot blocks restore and dangerous downgrades ---------------------------------------


def test_restore_and_downgrade_refuse_while_a_heartbeat_is_fresh(cli_env: dict[str, str]) -> None:
    from guildkeep.db import utcnow
    from guildkeep.db.instances import BotInstance, Heartbeat

    url = cli_env["GUILDKEEP_DATABASE_URL"]
    _ok(["db", "upgrade"], cli_env)
    _seed_guild(url)
    good = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    _seed_guild(url, guild_id=8, name="Added later")

    async def beat(db: Database) -> None:
        await Heartbeat(db, kind="bot").beat()  # the row a running bot keeps fresh

    _run_async(url, beat)
    for command in (["db", "restore", str(good), "--yes"], ["db", "downgrade", "base", "--yes"],
                    ["db", "downgrade", "leveling@-1", "--yes"]):
        out = _fails(command, cli_env)
        assert "a bot is running on this database" in out
        assert f"pid {os.getpid()}" in out
        assert "--force" in out
        assert len(out.strip().splitlines()) == 1
    assert {"guilds", "leveling_levels"} <= _tables(url)
    assert not list(Path(cli_env["GUILDKEEP_BACKUP_DIR"]).glob("*.tar.gz"))[1:]  # no downgrade backup was taken
    assert "restored" in _ok(["db", "restore", str(good), "--yes", "--force"], cli_env)

    # a heartbeat older than a minute is a bot that died: it no longer blocks
    _run_async(url, beat)

    async def age(db: Database) -> None:
        async with db.session() as s:
            await s.execute(update(BotInstance).values(heartbeat_at=utcnow() - timedelta(seconds=90)))

    _run_async(url, age)
    assert "restored" in _ok(["db", "restore", str(good), "--yes"], cli_env)


def test_a_running_playground_blocks_restore_until_it_stops(cli_env: dict[str, str], tmp_path: Path) -> None:
    from guildkeep.db.instances import live_instances

    url = cli_env["GUILDKEEP_DATABASE_URL"]
    _ok(["db", "upgrade"], cli_env)
    good = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GUILDKEEP_")}, **cli_env,
           "GUILDKEEP_LOG_LEVEL": "ERROR"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("guildkeep")), "playground"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        live: list[Any] = []
        while not live and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            live = _run_async(url, live_instances)
        assert [(i.kind, i.pid) for i in live] == [("playground", proc.pid)]
        out = _fails(["db", "restore", str(good), "--yes"], cli_env)
        assert f"playground pid {proc.pid}" in out
        _stdout, stderr = proc.communicate(b":quit\n", timeout=120)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _run_async(url, live_instances) == []  # the clean stop removed the row
    assert "restored" in _ok(["db", "restore", str(good), "--yes"], cli_env)


# --- the README documents every command and option ---------------------------------------------


def test_readme_lists_every_operator_command_and_option() -> None:
    """``run``, ``playground``, ``db`` and ``import``: each command, with each of its options, is in the README."""
    import typer.main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    # An entry starts at "guildkeep ..." (line start, or a second column after 3+ spaces) and runs to the next.
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=   ))guildkeep ", section, flags=re.MULTILINE)]
    entries = [section[a:b] for a, b in zip(starts, [*starts[1:], len(section)], strict=True)]

    def walk(command: Any, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                if path or name in {"run", "playground", "db", "import"}:
                    walk(sub, [*path, name])
            return
        if path == ["db", "revision"]:  # for developers; described under Development
            return
        name = "guildkeep " + " ".join(path)
        matches = [text for text in entries if text == name or text.startswith((name + " ", name + "\n"))]
        assert matches, f"README's Command line does not list `{name}`"
        for param in command.params:
            opts = [o for o in getattr(param, "opts", []) if o.startswith("--") and o != "--help"]
            if opts and param.param_type_name == "option":
                assert any(opts[0] in text for text in matches), f"README does not show {opts[0]} of `{name}`"

    walk(typer.main.get_command(app), [])


def test_a_database_that_does_not_exist_is_one_line(isolated_env: Path, pg_admin_url: str) -> None:
    from sqlalchemy.engine import make_url

    missing = make_url(pg_admin_url).set(database="gk_no_such_database").render_as_string(hide_password=False)
    env = {"GUILDKEEP_DATABASE_URL": missing, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    (isolated_env / "script.txt").write_text(":help\n")
    for command in (["db", "current"], ["db", "upgrade"], ["playground", "--script", "script.txt"]):
        out = _fails(command, env)
        assert 'database "gk_no_such_database" does not exist' in out, out
        assert len(out.strip().splitlines()) == 1, out


def _config_without_tier(directory: Path, tier: str) -> Path:
    """A copy of the shipped gacha configuration with the rarity ``tier`` (and its Esprits) removed."""
    import shutil

    from guildkeep.gacha.config import DATA_DIR, load_config

    shutil.copytree(DATA_DIR, directory)

    def rewrite(name: str, change: Callable[[Any], Any]) -> None:
        path = directory / name
        path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")

    rewrite("rarity_tiers.json", lambda d: {**d, "tiers": [t for t in d["tiers"] if t["id"] != tier]})
    rewrite("esprits.json", lambda d: {**d, "esprits": [e for e in d["esprits"] if e["rarity"] != tier]})
    rewrite("rarity_visuals.json", lambda d: {k: v for k, v in d.items() if k != tier})

    def settings(d: dict[str, Any]) -> dict[str, Any]:
        d["starting"]["starter_rarities"] = [r for r in d["starting"]["starter_rarities"] if r != tier]
        return d

    rewrite("game_settings.json", settings)
    load_config(directory)  # valid on its own: only the owned copies make it unusable
    return directory


def test_a_config_that_drops_an_owned_tier_stops_start_up_in_one_line(cli_env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    from guildkeep.gacha.service import GachaService

    _ok(["db", "upgrade"], cli_env)

    async def two_players(db: Database) -> str:
        service = GachaService(db)
        await service.seed_catalogue()
        first = await service.start(1, 11)
        await service.start(1, 12)
        await service.start(2, 11)
        return first.starter.rarity

    rarity = _run_async(cli_env["GUILDKEEP_DATABASE_URL"], two_players)
    owned = _run_async(cli_env["GUILDKEEP_DATABASE_URL"], lambda db: _copies_of(db, rarity))
    assert owned >= 1
    config = _config_without_tier(tmp_path / "dropped", rarity)
    (tmp_path / "script.txt").write_text(":help\n")
    for command in STARTS:
        out = _fails(command, {**cli_env, "GUILDKEEP_GACHA_CONFIG_DIR": str(config)})
        out = "\n".join(line for line in out.splitlines() if "opening the playground instead" not in line)
        _one_line_naming(out, "GUILDKEEP_GACHA_CONFIG_DIR")
        assert str(config) in out
        assert "rarity_tiers.json" in out
        assert repr(rarity) in out
        assert f"{owned} owned Esprit" in out


async def _copies_of(db: Database, rarity: str) -> int:
    from sqlalchemy import func, select

    from guildkeep.gacha.models import Esprit, UserEsprit

    async with db.session() as s:
        return (await s.execute(select(func.count(UserEsprit.id)).join(Esprit, UserEsprit.esprit_id == Esprit.id)
                                .where(Esprit.rarity == rarity))).scalar_one()


@pytest.mark.parametrize("job_id", ["abc", "-1", "0", "1.5", str(2**63), "99999999999999999999"])
@pytest.mark.parametrize("command", ["cancel", "retry"])
def test_a_bad_job_id_is_refused_in_one_line(cli_env: dict[str, str], command: str, job_id: str) -> None:
    _ok(["db", "upgrade"], cli_env)
    out = _fails(["jobs", command, "--", job_id], cli_env)
    assert "job_id" in out
    assert "Error" in out


def test_an_unknown_job_id_is_one_line(cli_env: dict[str, str]) -> None:
    _ok(["db", "upgrade"], cli_env)
    for command in ("cancel", "retry"):
        out = _fails(["jobs", command, str(2**63 - 1)], cli_env)
        assert out.strip() == f"guildkeep: There is no scheduled job {2**63 - 1}."


@pytest.mark.parametrize("options", [["--port", "70000"], ["--port=-1"], ["--port", "abc"],
                                     ["--port", "0", "--host", "no..such..host"],
                                     ["--port", "0", "--host", "a" * 300]])
def test_llm_standin_refuses_a_bad_port_or_host_without_a_traceback(isolated_env: Path, options: list[str]) -> None:
    result = runner.invoke(app, ["llm", "standin", *options])
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), (result.output, result.exception)
    assert "Traceback" not in result.output
    assert "port" in result.output or "cannot listen on" in result.output


def test_a_sqlite_database_under_a_missing_directory_is_refused_and_nothing_is_created(isolated_env: Path) -> None:
    missing = isolated_env / "not-made" / "sub"
    for command in (["db", "upgrade"], ["run"]):
        out = _fails(command, {"GUILDKEEP_DATABASE_URL": f"sqlite+aiosqlite:///{missing / 'bot.db'}"})
        _one_line_naming(out, "GUILDKEEP_DATABASE_URL")
        assert str(missing) in out
    assert not (isolated_env / "not-made").exists()
