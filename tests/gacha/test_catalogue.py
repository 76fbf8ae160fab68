"""Reseeding the shared catalogue on both databases: orphaned rarities are refused, every process reloads."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from guildkeep.cache import InvalidationBus
from guildkeep.gacha.config import DATA_DIR, GachaConfigError, load_config
from guildkeep.gacha.service import GachaService
from tests.conftest import eventually
from tests.gacha.conftest import GUILD


def copy_defaults(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for file in DATA_DIR.glob("*.json"):
        shutil.copyfile(file, directory / file.name)
    return directory


def edit(directory: Path, name: str, change) -> None:  # change: a callable on the parsed JSON
    path = directory / name
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def drop_tier(directory: Path, tier: str) -> None:
    edit(directory, "rarity_tiers.json", lambda d: d.update(tiers=[t for t in d["tiers"] if t["id"] != tier]))
    edit(directory, "esprits.json", lambda d: d.update(esprits=[e for e in d["esprits"] if e["rarity"] != tier]))
    edit(directory, "rarity_visuals.json", lambda d: d.pop(tier))
    edit(directory, "game_settings.json", lambda d: d["starting"].update(
        starter_rarities=[r for r in d["starting"]["starter_rarities"] if r != tier]))


async def test_a_reseed_that_drops_a_tier_owned_copies_still_have_is_refused(service: GachaService,
                                                                                  tmp_path: Path) -> None:
    await service.start(GUILD, 1)
    owned = (await service.inventory(GUILD, 1)).items[0]
    directory = copy_defaults(tmp_path / "gacha")
    drop_tier(directory, owned.rarity)
    before = service.config
    with pytest.raises(GachaConfigError) as info:
        await service.reseed(directory)
    assert str(info.value).startswith(f"rarity_tiers.json: entry {owned.rarity!r}: the tier was removed but 1 owned "
                                      "Esprit still has this rarity")
    assert service.config is before
    assert (await service.inventory(GUILD, 1)).items[0].rarity == owned.rarity
    assert (await service.reseed()).retired == 0  # nothing was retired by the refused reseed

    # A tier nobody owns may go: its Esprits are retired.
    unowned = next(t.id for t in service.config.tiers if t.id != owned.rarity and t.id not in ("rare", "legendary")
                   and t.id not in service.config.settings.starting.starter_rarities)
    directory = copy_defaults(tmp_path / "gacha2")
    drop_tier(directory, unowned)
    report = await service.reseed(directory)
    assert report.retired == len(load_config().esprits_of(unowned))
    assert unowned not in [t.id for t in service.config.tiers]


async def test_a_reseed_reaches_every_process_through_the_bus(
    service: GachaService, shard_buses: tuple[InvalidationBus, InvalidationBus], tmp_path: Path,
) -> None:
    directory = copy_defaults(tmp_path / "gacha")
    one_bus, other_bus = shard_buses
    one = GachaService(service.db, config_dir=directory, bus=one_bus, rng=random.Random(1))
    other = GachaService(service.db, config_dir=directory, bus=other_bus, rng=random.Random(2))
    try:
        edit(directory, "esprits.json", lambda d: d["esprits"][0].update(name="Renamed Kit"))
        edit(directory, "game_settings.json", lambda d: d["summon"].update(single_cost=7))
        report = await one.reseed()
        assert report.updated == 1
        assert one.config.esprits[0].name == "Renamed Kit"
        await eventually(lambda: other.config.settings.summon.single_cost == 7)
        assert other.config.esprits[0].name == "Renamed Kit"
        # The other process now charges what the operator configured.
        await other.start(GUILD, 5)
        assert (await other.summon(GUILD, 5, 1)).cost == 7
    finally:
        one.detach()
        other.detach()
