"""Import and export of the seed's JSON files on both databases: well-formed, partly malformed, corrupt with a
backup, the command line, and a round trip export -> import that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from guildkeep.campaign.cli import read_seed_dir, write_seed_dir
from guildkeep.campaign.models import Campaign, CampaignCharacter, CampaignNpc, CampaignPlayer
from guildkeep.campaign.service import CampaignService
from guildkeep.characters.models import Character
from guildkeep.cli import app
from guildkeep.db import Base, Database

G = "900000000000000001"
C1, C2 = "800000000000000001", "800000000000000002"
GM, BOB, CAROL = "700000000000000001", "700000000000000002", "700000000000000003"

CAMPAIGNS = {G: {
    C1: {"name": "Lost Mine", "gm_id": GM, "player_role_id": "600000000000000001",
         "gm_role_id": "600000000000000002", "webhook_id": "500000000000000001", "players": [BOB, CAROL]},
    C2: {"name": "Curse of Strahd", "gm_id": BOB, "player_role_id": "600000000000000003",
         "gm_role_id": "600000000000000004", "players": [CAROL]},
}}
CHARACTERS = {G: {
    BOB: {C1: {"name": "Thorin", "avatar_url": "https://example.org/thorin.png", "description": "A dwarf"}},
    CAROL: {C1: {"name": "Gimli", "avatar_url": "https://example.org/gimli.png", "description": ""},
            C2: {"name": "Ireena", "avatar_url": None, "description": "A noble"}},
}}
NPCS = {G: {
    C1: {"npc1": {"name": "Sildar", "avatar_url": "https://example.org/sildar.png", "creator_id": GM},
         "npc2": {"name": "Glasstaff", "avatar_url": None, "creator_id": GM}},
    C2: {"npc1": {"name": "Strahd", "avatar_url": None, "creator_id": BOB}},
}}

runner = CliRunner()


def write(directory: Path, campaigns: Any = CAMPAIGNS, characters: Any = CHARACTERS, npcs: Any = NPCS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in (("campaigns.json", campaigns), ("characters.json", characters), ("npcs.json", npcs)):
        if data is not None:
            (directory / name).write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return directory


def never(_question: str) -> bool:
    raise AssertionError("asked although nothing needed a backup")


async def run_import(db: Database, directory: Path, **kwargs: Any) -> Any:
    seed = read_seed_dir(directory, use_backup=kwargs.pop("use_backup", None), confirm=kwargs.pop("confirm", never))
    ticks: list[int] = []
    report = await CampaignService(db).import_seed(seed.data, progress=lambda: ticks.append(1))
    counted = sum(report.imported.values()) + sum(report.updated.values()) + sum(report.unchanged.values())
    assert counted <= len(ticks) <= seed.entries  # one tick per entry walked (skipped ones included)
    return report


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every campaign table and the characters table, row by row (timestamps included)."""
    out = {}
    async with db.session(read_only=True) as s:
        for model in (Campaign, CampaignPlayer, CampaignCharacter, CampaignNpc, Character):
            table = Base.metadata.tables[model.__tablename__]
            rows = (await s.execute(select(table).order_by(*table.primary_key.columns))).mappings().all()
            out[table.name] = [dict(r) for r in rows]
    return out


async def test_well_formed_import_then_again_changes_nothing(db: Database, tmp_path: Path) -> None:
    directory = write(tmp_path / "data")
    report = await run_import(db, directory)
    assert report.imported == {"campaigns": 2, "characters": 3, "npcs": 3}
    assert report.updated == {}
    assert report.skipped == []
    service = CampaignService(db)
    lost = await service.get(int(G), int(C1))
    assert (lost.name, lost.gm_id, lost.players, lost.webhook_id) == (
        "Lost Mine", int(GM), (int(BOB), int(CAROL)), 500000000000000001)
    played = await service.list_characters(int(G), int(C1))
    assert [(p.user_id, p.character.name, p.character.avatar_url) for p in played] == [
        (int(CAROL), "Gimli", "https://example.org/gimli.png"), (int(BOB), "Thorin", "https://example.org/thorin.png")]
    assert [n.name for n in await service.list_npcs(int(G), int(C1))] == ["Glasstaff", "Sildar"]
    # the imported characters live in the character repository, owned by their players
    assert [c.name for c in (await service.characters.list_owned(int(CAROL))).items] == ["Gimli", "Ireena"]

    before = await snapshot(db)
    again = await run_import(db, directory)
    assert (again.imported, again.updated, again.skipped) == ({}, {}, [])
    assert again.unchanged == {"campaigns": 2, "characters": 3, "npcs": 3}
    assert await snapshot(db) == before


async def test_a_changed_file_updates(db: Database, tmp_path: Path) -> None:
    await run_import(db, write(tmp_path / "one"))
    campaigns = json.loads(json.dumps(CAMPAIGNS))
    campaigns[G][C1]["name"] = "Lost Mine of Phandelver"
    characters = json.loads(json.dumps(CHARACTERS))
    characters[G][BOB][C1]["description"] = "King under the mountain"
    report = await run_import(db, write(tmp_path / "two", campaigns, characters))
    assert report.updated == {"campaigns": 1, "characters": 1}
    assert (await CampaignService(db).get(int(G), int(C1))).name == "Lost Mine of Phandelver"
    thorin = await CampaignService(db).character_of(int(G), int(C1), int(BOB))
    assert thorin.character.description == "King under the mountain"


async def test_one_name_two_campaigns_binds_one_character_or_says_why(db: Database, tmp_path: Path) -> None:
    characters = json.loads(json.dumps(CHARACTERS))
    characters[G][BOB][C2] = dict(characters[G][BOB][C1])  # the same Thorin in both campaigns
    characters[G][CAROL][C2] = {**characters[G][CAROL][C1], "description": "Another Gimli"}
    campaigns = json.loads(json.dumps(CAMPAIGNS))
    campaigns[G][C2]["gm_id"] = GM
    directory = write(tmp_path / "data", campaigns, characters)
    report = await run_import(db, directory)
    assert report.imported == {"campaigns": 2, "characters": 3, "npcs": 3}
    assert [r for w, r in report.skipped] == [
        "the player already has a character called Gimli with another name spelling, picture or description "
        "(in another campaign or /persona); rename one of them"]
    service = CampaignService(db)
    thorins = {(await service.character_of(int(G), int(c), int(BOB))).character.id for c in (C1, C2)}
    assert len(thorins) == 1
    before = await snapshot(db)
    again = await run_import(db, directory)
    assert (again.imported, again.updated, len(again.skipped)) == ({}, {}, 1)
    assert await snapshot(db) == before


async def test_partly_malformed_keeps_going_and_says_why(db: Database, tmp_path: Path) -> None:
    campaigns = {
        G: {
            C1: CAMPAIGNS[G][C1],
            "not-a-channel": {"name": "x", "gm_id": GM},
            "800000000000000003": {"name": "No GM"},
            "800000000000000004": {"name": "Bad players", "gm_id": GM, "players": "bob"},
            "800000000000000005": ["not", "an", "object"],
        },
        "oops": {},
    }
    characters = {G: {
        BOB: {C1: {"name": "Thorin"}, "800000000000000009": {"name": "Lost"}},
        CAROL: {C1: {"name": "Clyde the Bot"}},
        GM: {C1: {"name": "Narrator", "avatar_url": "ftp://nope"}},
    }}
    npcs = {G: {C1: {"a": {"name": "Sildar"}, "b": {"name": ""}, "c": "nope"}}}
    report = await run_import(db, write(tmp_path / "data", campaigns, characters, npcs))
    assert report.imported == {"campaigns": 1, "characters": 1, "npcs": 1}
    reasons = dict(report.skipped)
    assert reasons[f"campaigns.json > {G} > not-a-channel"] == "not a Discord id"
    assert reasons[f"campaigns.json > {G} > 800000000000000003"] == "gm_id is not a Discord id"
    assert reasons[f"campaigns.json > {G} > 800000000000000004"] == "players is not a list"
    assert reasons[f"campaigns.json > {G} > 800000000000000005"] == "not a JSON object"
    assert reasons["campaigns.json > oops"] == "the server id is not a Discord id"
    assert "not in campaigns.json" in reasons[f"characters.json > {G} > {BOB} > 800000000000000009"]
    assert '"clyde"' in reasons[f"characters.json > {G} > {CAROL} > {C1}"]
    assert "https://" in reasons[f"characters.json > {G} > {GM} > {C1}"]
    assert "empty" in reasons[f"npcs.json > {G} > {C1} > b"]
    assert reasons[f"npcs.json > {G} > {C1} > c"] == "not a JSON object"
    assert len(report.skipped) == 10
    again = await run_import(db, write(tmp_path / "data", campaigns, characters, npcs))
    assert (again.imported, again.updated, len(again.skipped)) == ({}, {}, 10)


async def test_corrupt_file_offers_the_newest_backup_that_parses(db: Database, tmp_path: Path) -> None:
    directory = write(tmp_path / "data", campaigns='{"900000000000000001": {"8000', npcs=None)
    backups = directory / "backups"
    backups.mkdir()
    (backups / "campaigns.json.20250101120000").write_text(json.dumps(CAMPAIGNS))
    (backups / "campaigns.json.20250102120000").write_text("{ broken too")  # newest, but it does not parse
    older = json.loads(json.dumps(CAMPAIGNS))
    older[G][C1]["name"] = "Older"
    (backups / "campaigns.json.20241231120000").write_text(json.dumps(older))
    (backups / "npcs.json.20250101120000").write_text(json.dumps(NPCS))

    asked: list[str] = []

    def yes(question: str) -> bool:
        asked.append(question)
        return True

    seed = read_seed_dir(directory, use_backup=None, confirm=yes)
    assert len(asked) == 2
    assert asked[0].startswith("campaigns.json is corrupt (not valid JSON")
    assert "campaigns.json.20250101120000 (from 2025-01-01 12:00:00)" in asked[0]
    assert asked[1].startswith("npcs.json is missing. Use the newest backup that parses, npcs.json.20250101120000")
    report = await CampaignService(db).import_seed(seed.data)
    assert report.imported == {"campaigns": 2, "characters": 3, "npcs": 3}
    assert (await CampaignService(db).get(int(G), int(C1))).name == "Lost Mine"

    refused = read_seed_dir(directory, use_backup=False, confirm=never)
    assert refused.data["campaigns"] is None
    assert any("left out" in n for n in refused.notes)
    (backups / "campaigns.json.20250101120000").unlink()
    (backups / "campaigns.json.20241231120000").unlink()
    nothing = read_seed_dir(directory, use_backup=True, confirm=never)
    assert nothing.data["campaigns"] is None
    assert "no backup of it" in nothing.notes[0]


async def test_export_then_import_changes_nothing(db: Database, tmp_path: Path) -> None:
    await run_import(db, write(tmp_path / "data"))
    service = CampaignService(db)
    await service.archive(int(G), int(C2), int(BOB))
    await service.create(901, 801, 701, "Other server")  # not exported with G
    exported = await service.export_guild(int(G))
    assert set(exported["campaigns"]) == {G}
    assert exported["campaigns"][G][C1] == {**CAMPAIGNS[G][C1], "archived": False}
    assert exported["characters"] == CHARACTERS
    assert [v["name"] for v in exported["npcs"][G][C1].values()] == ["Sildar", "Glasstaff"]
    out = tmp_path / "exported"
    write_seed_dir(out, exported)
    before = await snapshot(db)
    report = await run_import(db, out)
    assert (report.imported, report.updated, report.skipped) == ({}, {}, [])
    assert report.unchanged == {"campaigns": 2, "characters": 3, "npcs": 3}
    assert await snapshot(db) == before
    # writing again keeps the previous files as timestamped backups
    write_seed_dir(out, exported)
    assert len(list((out / "backups").glob("campaigns.json.*"))) == 1


def test_the_commands_import_and_export(empty_database_url: str, tmp_path: Path) -> None:
    env = {"GUILDKEEP_DATABASE_URL": empty_database_url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    directory = write(tmp_path / "data", campaigns="not json")
    (directory / "backups").mkdir()
    (directory / "backups" / "campaigns.json.20250101120000").write_text(json.dumps(CAMPAIGNS))
    asked = runner.invoke(app, ["import", "campaign-json", str(directory)], env=env)
    assert asked.exit_code == 0, asked.output
    assert "campaigns.json is corrupt" in asked.output
    assert "--use-backup" in asked.output  # not a terminal: it says how to take the backup
    assert "not in campaigns.json" in asked.output  # characters of campaigns it left out are skipped
    first = runner.invoke(app, ["import", "campaign-json", str(directory), "--use-backup"], env=env)
    assert first.exit_code == 0, first.output
    assert "using the backup campaigns.json.20250101120000" in first.output
    assert "│ campaigns  │ 2        │ 0       │ 0" in first.output
    second = runner.invoke(app, ["import", "campaign-json", str(directory), "--use-backup"], env=env)
    assert "│ campaigns  │ 0        │ 0       │ 2" in second.output
    assert "skipped: 0" in second.output
    out = tmp_path / "out"
    exported = runner.invoke(app, ["export", "campaign-json", "--guild", G, str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert "exported 2 campaign(s)" in exported.output
    assert json.loads((out / "characters.json").read_text()) == CHARACTERS
    bad = runner.invoke(app, ["export", "campaign-json", "--guild", "0", str(out)], env=env)
    assert bad.exit_code == 2
