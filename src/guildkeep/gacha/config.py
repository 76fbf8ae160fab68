"""The game's JSON configuration: catalogue, game settings, rarity tiers, rarity visuals, stat icons.

The game settings themselves are declared in `guildkeep.gacha.settings`.

The defaults ship in ``guildkeep/gacha/data/``. A server owner may point ``GUILDKEEP_GACHA_CONFIG_DIR``
at a directory of their own: each file found there replaces the shipped file of the same name, the
others keep their defaults. Every problem is reported as one `GachaConfigError` naming the file, the
entry and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from guildkeep.gacha.settings import SLUG, Currency, GameSettings, Strict

DATA_DIR = Path(__file__).parent / "data"
STAT_NAMES = ("hp", "attack", "defense", "speed", "magic")

ESPRITS_FILE = "esprits.json"
SETTINGS_FILE = "game_settings.json"
TIERS_FILE = "rarity_tiers.json"
VISUALS_FILE = "rarity_visuals.json"
ICONS_FILE = "stat_icons.json"


class GachaConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. The message names file, entry and field."""


# --- esprits.json -------------------------------------------------------------------------------


class BaseStats(Strict):
    hp: int = Field(ge=1, le=100_000)
    attack: int = Field(ge=0, le=100_000)
    defense: int = Field(ge=0, le=100_000)
    speed: int = Field(ge=0, le=100_000)
    magic: int = Field(ge=0, le=100_000)


class EspritEntry(Strict):
    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)
    rarity: str
    element: str = Field(min_length=1, max_length=32)
    base_stats: BaseStats
    image: str = Field(min_length=1, max_length=200)


class EspritsFile(Strict):
    esprits: list[EspritEntry] = Field(min_length=1)


# --- rarity_tiers.json / rarity_visuals.json / stat_icons.json ----------------------------------


class RarityTier(Strict):
    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=50)
    weight: float = Field(gt=0)  # finite and above 0: every tier can be rolled
    stars: int = Field(ge=1, le=10)


class TiersFile(Strict):
    tiers: list[RarityTier] = Field(min_length=2)


class RarityVisual(Strict):
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    accent: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    emoji: str = Field(min_length=1, max_length=16)


UNKNOWN_VISUAL = RarityVisual(color="#808080", accent="#c0c0c0", emoji="❔")


class StatIcon(Strict):
    label: str = Field(min_length=1, max_length=8)
    emoji: str = Field(min_length=1, max_length=16)


# --- loading ---------------------------------------------------------------------------------------

# The wallet's columns. The settings choose which of them the game uses and what they are called.
WALLET = ("faylen", "virelite", "gems")


@dataclass(frozen=True)
class GachaConfig:
    """Everything the game reads from its JSON files, validated and cross-checked."""

    esprits: tuple[EspritEntry, ...]
    settings: GameSettings
    tiers: tuple[RarityTier, ...]  # ascending: the first is the most common
    visuals: Mapping[str, RarityVisual]
    stat_icons: Mapping[str, StatIcon]
    source: Mapping[str, Path]  # file name -> where it was read from

    @property
    def currency_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.settings.currencies)

    def currency(self, currency_id: str) -> Currency:
        """The currency's names for display; a wallet column the config no longer uses (a listing priced in it
        before a reseed) is shown under its id."""
        for currency in self.settings.currencies:
            if currency.id == currency_id:
                return currency
        name = currency_id.replace("_", " ").title()[:32] or "?"
        return Currency.model_construct(id=currency_id, name=name, emoji="")

    def rarity_rank(self, rarity: str) -> int:
        for rank, tier in enumerate(self.tiers):
            if tier.id == rarity:
                return rank
        raise KeyError(rarity)

    def tier(self, rarity: str) -> RarityTier:
        return self.tiers[self.rarity_rank(rarity)]

    def find_tier(self, text: str) -> RarityTier | None:
        """The tier whose id or name is ``text`` (any case), or None."""
        wanted = text.strip().casefold()
        return next((t for t in self.tiers if wanted in (t.id, t.name.casefold())), None)

    def find_currency(self, text: str) -> Currency | None:
        """The currency whose id or name is ``text`` (any case), or None."""
        wanted = text.strip().casefold()
        return next((c for c in self.settings.currencies if wanted in (c.id, c.name.casefold())), None)

    def tier_label(self, rarity: str) -> tuple[str, int]:
        """(name, stars) to show for a rarity; a rarity no longer configured still renders (as its id)."""
        for tier in self.tiers:
            if tier.id == rarity:
                return tier.name, tier.stars
        return rarity.replace("_", " ").title(), 1

    def visual(self, rarity: str) -> RarityVisual:
        """The rarity's visual; a rarity no longer configured gets a neutral grey frame."""
        return self.visuals.get(rarity) or UNKNOWN_VISUAL

    def esprits_of(self, rarity: str) -> tuple[EspritEntry, ...]:
        return tuple(e for e in self.esprits if e.rarity == rarity)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GachaConfigError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GachaConfigError(
            f"{path.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc


def _entry_label(data: Any, loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """Split a pydantic location into the entry (list item or mapping key) and the field path."""
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(data, dict):
        items = data.get(loc[0])
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        ident = item.get("id") if isinstance(item, dict) else None
        label = f"entry {ident!r} (#{loc[1] + 1})" if ident else f"entry #{loc[1] + 1}"
        return label, loc[2:]
    return "", loc


def _describe(file: str, data: Any, exc: PydanticValidationError) -> GachaConfigError:
    problems = []
    for error in exc.errors()[:5]:
        entry, field = _entry_label(data, tuple(error["loc"]))
        where = ", ".join(p for p in (entry, f"field {'.'.join(str(x) for x in field)}" if field else "") if p)
        problems.append(f"{file}: {where or 'top level'}: {error['msg']}")
    more = len(exc.errors()) - len(problems)
    return GachaConfigError("; ".join(problems) + (f" (and {more} more)" if more > 0 else ""))


def _parse(model: type[BaseModel], file: str, data: Any) -> Any:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise _describe(file, data, exc) from exc


def _parse_mapping(model: type[BaseModel], file: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GachaConfigError(f"{file}: top level: expected an object mapping names to entries")
    out = {}
    for key, value in data.items():
        try:
            out[key] = model.model_validate(value)
        except PydanticValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(x) for x in error["loc"])
            raise GachaConfigError(
                f"{file}: entry {key!r}, field {field or '(entry)'}: {error['msg']}"
            ) from exc
    return out


def _cross_check(cfg: GachaConfig) -> None:
    tiers = [t.id for t in cfg.tiers]
    if len(set(tiers)) != len(tiers):
        raise GachaConfigError(f"{TIERS_FILE}: tier ids must be unique (got {tiers})")
    if sum(t.weight for t in cfg.tiers) <= 0:
        raise GachaConfigError(f"{TIERS_FILE}: field weight: at least one tier needs a weight above 0")
    seen: set[str] = set()
    for index, entry in enumerate(cfg.esprits, start=1):
        label = f"{ESPRITS_FILE}: entry {entry.id!r} (#{index})"
        if entry.id in seen:
            raise GachaConfigError(f"{label}, field id: duplicate id")
        seen.add(entry.id)
        if entry.rarity not in tiers:
            raise GachaConfigError(f"{label}, field rarity: {entry.rarity!r} is not a tier in {TIERS_FILE} {tiers}")
    for tier in cfg.tiers:
        if tier.weight > 0 and not cfg.esprits_of(tier.id):
            raise GachaConfigError(
                f"{TIERS_FILE}: entry {tier.id!r}, field weight: the tier can be rolled but no Esprit in "
                f"{ESPRITS_FILE} has this rarity"
            )
        if tier.id not in cfg.visuals:
            raise GachaConfigError(f"{VISUALS_FILE}: entry {tier.id!r}: missing (every rarity tier needs a visual)")
    missing_icons = [s for s in STAT_NAMES if s not in cfg.stat_icons]
    if missing_icons:
        raise GachaConfigError(f"{ICONS_FILE}: entry {missing_icons[0]!r}: missing (every stat needs an icon)")

    s = cfg.settings
    currencies = [c.id for c in s.currencies]
    if len(set(currencies)) != len(currencies):
        raise GachaConfigError(f"{SETTINGS_FILE}: field currencies: currency ids must be unique")
    for index, currency_id in enumerate(currencies, start=1):
        if currency_id not in WALLET:
            raise GachaConfigError(
                f"{SETTINGS_FILE}: entry {currency_id!r} (#{index}), field currencies.id: must be one of the "
                f"wallet's currencies {list(WALLET)} (rename it with its name field)"
            )

    def need_currency(value: str, field: str) -> None:
        if value not in currencies:
            raise GachaConfigError(
                f"{SETTINGS_FILE}: field {field}: {value!r} is not one of the currencies {currencies}"
            )

    def need_tier(value: str, field: str) -> None:
        if value not in tiers:
            raise GachaConfigError(f"{SETTINGS_FILE}: field {field}: {value!r} is not a tier in {TIERS_FILE} {tiers}")

    for currency, amount in s.starting.currencies.items():
        need_currency(currency, f"starting.currencies.{currency}")
        if not 0 <= amount <= s.balance_max:
            raise GachaConfigError(
                f"{SETTINGS_FILE}: field starting.currencies.{currency}: must be between 0 and balance_max"
            )
    for rarity in s.starting.starter_rarities:
        need_tier(rarity, "starting.starter_rarities")
        if not cfg.esprits_of(rarity):
            raise GachaConfigError(
                f"{SETTINGS_FILE}: field starting.starter_rarities: no Esprit in {ESPRITS_FILE} is {rarity!r}"
            )
    for currency in s.daily.rewards:
        need_currency(currency, f"daily.rewards.{currency}")
    need_currency(s.summon.currency, "summon.currency")
    for currency in s.auction.currencies:
        need_currency(currency, "auction.currencies")
    need_tier(s.pity.guaranteed_rarity, "pity.guaranteed_rarity")
    need_tier(s.pity.hard_rarity, "pity.hard_rarity")
    if s.auction.min_price > s.auction.max_price:
        raise GachaConfigError(f"{SETTINGS_FILE}: field auction.min_price: must not exceed auction.max_price")
    if s.auction.max_price > s.balance_max:
        raise GachaConfigError(f"{SETTINGS_FILE}: field auction.max_price: must not exceed balance_max")


def load_config(override_dir: Path | str | None = None) -> GachaConfig:
    """Read and validate the five files, each from ``override_dir`` when it holds one, else the defaults."""
    override = Path(override_dir) if override_dir else None
    if override is not None and not override.is_dir():
        raise GachaConfigError(f"gacha config directory {override} does not exist")

    def locate(name: str) -> Path:
        if override is not None and (override / name).is_file():
            return override / name
        return DATA_DIR / name

    paths = {name: locate(name) for name in (ESPRITS_FILE, SETTINGS_FILE, TIERS_FILE, VISUALS_FILE, ICONS_FILE)}
    raw = {name: _read_json(path) for name, path in paths.items()}
    cfg = GachaConfig(
        esprits=tuple(_parse(EspritsFile, ESPRITS_FILE, raw[ESPRITS_FILE]).esprits),
        settings=_parse(GameSettings, SETTINGS_FILE, raw[SETTINGS_FILE]),
        tiers=tuple(_parse(TiersFile, TIERS_FILE, raw[TIERS_FILE]).tiers),
        visuals=_parse_mapping(RarityVisual, VISUALS_FILE, raw[VISUALS_FILE]),
        stat_icons=_parse_mapping(StatIcon, ICONS_FILE, raw[ICONS_FILE]),
        source=paths,
    )
    _cross_check(cfg)
    return cfg
