"""The shipped configuration is valid; broken overrides are reported by file, entry and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guildkeep.config import SettingsError, load_settings
from guildkeep.gacha.config import DATA_DIR, GachaConfigError, load_config
from guildkeep.gacha.settings import GameSettings


def test_default_config_is_valid_and_large_enough() -> None:
    cfg = load_config()
    assert len(cfg.esprits) >= 30
    assert len(cfg.tiers) >= 5
    assert {e.rarity for e in cfg.esprits} == {t.id for t in cfg.tiers}
    assert cfg.currency_ids == ("faylen", "virelite", "gems")
    assert all(path.parent == DATA_DIR for path in cfg.source.values())


def _override(tmp_path: Path, name: str, mutate) -> Path:
    data = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    mutate(data)
    (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_override_directory_replaces_only_the_files_it_holds(tmp_path: Path) -> None:
    def rename(data: dict) -> None:
        data["currencies"][0]["name"] = "Gold"

    cfg = load_config(_override(tmp_path, "game_settings.json", rename))
    assert cfg.currency("faylen").name == "Gold"
    assert cfg.source["game_settings.json"] == tmp_path / "game_settings.json"
    assert cfg.source["esprits.json"] == DATA_DIR / "esprits.json"


@pytest.mark.parametrize(
    ("name", "mutate", "expected"),
    [
        (
            "esprits.json",
            lambda d: d["esprits"][3]["base_stats"].update(hp=-5),
            ["esprits.json", "entry 'breeze_sparrow' (#4)", "field base_stats.hp"],
        ),
        (
            "esprits.json",
            lambda d: d["esprits"][0].update(rarity="mythic"),
            ["esprits.json", "entry 'cinder_kit' (#1)", "field rarity", "'mythic'"],
        ),
        (
            "esprits.json",
            lambda d: d["esprits"][5].update(id="cinder_kit"),
            ["esprits.json", "entry 'cinder_kit' (#6)", "field id", "duplicate"],
        ),
        (
            "esprits.json",
            lambda d: d["esprits"][2].pop("name"),
            ["esprits.json", "entry 'pebble_mole' (#3)", "field name", "Field required"],
        ),
        (
            "rarity_tiers.json",
            lambda d: d["tiers"][1].update(weight="lots"),
            ["rarity_tiers.json", "entry 'uncommon' (#2)", "field weight"],
        ),
        (
            "rarity_visuals.json",
            lambda d: d["epic"].update(color="purple"),
            ["rarity_visuals.json", "entry 'epic'", "field color"],
        ),
        (
            "game_settings.json",
            lambda d: d["summon"].update(currency="dollars"),
            ["game_settings.json", "field summon.currency", "'dollars'"],
        ),
        (
            "game_settings.json",
            lambda d: d["pity"].update(hard_threshold=1),
            ["game_settings.json", "field pity.hard_threshold"],
        ),
        (
            "stat_icons.json",
            lambda d: d.pop("speed"),
            ["stat_icons.json", "entry 'speed'", "missing"],
        ),
    ],
)
def test_validation_errors_name_file_entry_and_field(tmp_path: Path, name: str, mutate, expected: list[str]) -> None:
    with pytest.raises(GachaConfigError) as info:
        load_config(_override(tmp_path, name, mutate))
    for part in expected:
        assert part in str(info.value)


def test_invalid_json_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "esprits.json").write_text('{"esprits": [\n  {"id": }\n]}', encoding="utf-8")
    with pytest.raises(GachaConfigError, match=r"esprits\.json: not valid JSON \(line 2"):
        load_config(tmp_path)


def test_missing_override_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GachaConfigError, match="does not exist"):
        load_config(tmp_path / "nope")


@pytest.mark.parametrize("weight", ["Infinity", "-Infinity", "NaN", "0", "-1", "1e400"])
def test_a_weight_must_be_finite_and_positive(tmp_path: Path, weight: str) -> None:
    text = (DATA_DIR / "rarity_tiers.json").read_text(encoding="utf-8")
    (tmp_path / "rarity_tiers.json").write_text(text.replace('"weight": 27', f'"weight": {weight}'), encoding="utf-8")
    with pytest.raises(GachaConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("rarity_tiers.json: entry 'uncommon' (#2), field weight: ")


def test_no_number_in_the_settings_may_be_infinite(tmp_path: Path) -> None:
    text = (DATA_DIR / "game_settings.json").read_text(encoding="utf-8")
    (tmp_path / "game_settings.json").write_text(text.replace('"cooldown_hours": 24', '"cooldown_hours": NaN'),
                                                 encoding="utf-8")
    with pytest.raises(GachaConfigError, match=r"^game_settings.json: field daily.cooldown_hours: .*finite"):
        load_config(tmp_path)


def test_a_currency_dropped_from_the_settings_still_has_a_name_to_show(tmp_path: Path) -> None:
    """A listing priced in a currency an operator removed later must still render."""

    def drop_gems(data: dict) -> None:
        data["currencies"] = [c for c in data["currencies"] if c["id"] != "gems"]
        data["starting"]["currencies"].pop("gems")
        data["auction"]["currencies"] = ["faylen", "virelite"]

    cfg = load_config(_override(tmp_path, "game_settings.json", drop_gems))
    assert "gems" not in cfg.currency_ids
    assert cfg.currency("gems").name == "Gems"
    assert cfg.find_currency("gems") is None  # but it cannot be chosen


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", []), ("123", [123]), ("123, 456 ,789", [123, 456, 789]), ("9223372036854775807", [2**63 - 1])],
)
def test_operator_ids_are_a_comma_list_of_user_ids(isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                   value: str, expected: list[int]) -> None:
    monkeypatch.setenv("GUILDKEEP_OPERATOR_IDS", value)
    assert load_settings().operator_ids == expected


@pytest.mark.parametrize("value", ["abc", "12,x", "-5", "0", "²", "99999999999999999999", "[1, 2]"])
def test_a_bad_operator_id_is_one_clear_line(isolated_env: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GUILDKEEP_OPERATOR_IDS", value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid setting GUILDKEEP_OPERATOR_IDS: ")
    assert "\n" not in message


def test_the_shipped_settings_file_spells_out_exactly_the_declared_defaults() -> None:
    shipped = json.loads((DATA_DIR / "game_settings.json").read_text(encoding="utf-8"))
    assert GameSettings.model_validate(shipped) == GameSettings()
    assert load_config().settings == GameSettings()


def test_every_setting_has_a_default_and_a_description() -> None:
    for model in (GameSettings, *(type(getattr(GameSettings(), name)) for name in
                                  ("starting", "daily", "summon", "pity", "leveling", "auction"))):
        for name, field in model.model_fields.items():
            assert not field.is_required(), f"{model.__name__}.{name} has no default"
            if model is not GameSettings or name in ("currencies", "balance_max", "policy"):
                assert field.description, f"{model.__name__}.{name} has no description"


def test_an_override_may_name_only_what_it_changes(tmp_path: Path) -> None:
    (tmp_path / "game_settings.json").write_text(json.dumps({"summon": {"multi_count": 5}, "balance_max": 5000,
                                                             "auction": {"max_price": 5000}}), encoding="utf-8")
    settings = load_config(tmp_path).settings
    assert (settings.summon.multi_count, settings.balance_max, settings.auction.max_price) == (5, 5000, 5000)
    assert settings.summon.single_cost == GameSettings().summon.single_cost
    assert settings.daily == GameSettings().daily


def test_an_override_outside_the_declared_bounds_is_refused(tmp_path: Path) -> None:
    (tmp_path / "game_settings.json").write_text(json.dumps({"summon": {"multi_count": 26}}), encoding="utf-8")
    with pytest.raises(GachaConfigError, match=r"^game_settings.json: field summon.multi_count: .*equal to 25"):
        load_config(tmp_path)
