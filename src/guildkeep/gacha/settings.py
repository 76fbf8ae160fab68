"""The gacha game's settings, each declared once: its default, its bounds and what it means.

They are read from ``game_settings.json`` (the catalogue and the other files are loaded by
`guildkeep.gacha.config`, which also cross-checks names against the tiers and currencies). The shipped
file spells out every default (a test keeps it equal to these declarations); an operator's own file may
leave any setting out, and it then takes the default declared here. The settings are the bot's, shared by
every server it is in.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SLUG = r"^[a-z0-9][a-z0-9_]{0,63}$"


class Strict(BaseModel):
    """Unknown fields are refused, values are frozen, and no number may be infinite or NaN."""

    # JSON as Python reads it accepts Infinity and NaN: no number in the game may be either.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Currency(Strict):
    """One of the wallet's currencies as players see it."""

    id: str = Field(pattern=SLUG, description="A wallet column: faylen, virelite or gems.")
    name: str = Field(min_length=1, max_length=32, description="The name players see.")
    emoji: str = Field(default="", max_length=16, description="Shown before amounts.")


DEFAULT_CURRENCIES = (
    Currency(id="faylen", name="Faylen", emoji="🪙"),
    Currency(id="virelite", name="Virelite", emoji="💠"),
    Currency(id="gems", name="Gems", emoji="💎"),
)


class Starting(Strict):
    """What a new player gets on ``/start``."""

    level: int = Field(1, ge=1, le=1000, description="The player's starting level.")
    currencies: dict[str, int] = Field(
        default_factory=lambda: {"faylen": 1000, "virelite": 50, "gems": 10},
        description="The starting wallet, per currency id (0 to balance_max).",
    )
    starter_rarities: list[str] = Field(
        default_factory=lambda: ["common", "uncommon"], min_length=1,
        description="The starter Esprit is drawn uniformly from the Esprits of these rarities.",
    )


class DailyReward(Strict):
    """One currency's daily reward: ``base + per_level * (level - 1)``."""

    base: int = Field(ge=0, description="The reward at level 1.")
    per_level: int = Field(ge=0, description="Added for each level above 1.")


class Daily(Strict):
    """The daily reward."""

    cooldown_hours: float = Field(24, gt=0, le=24 * 30, description="Hours between two claims.")
    streak_window_hours: float = Field(
        48, gt=0, le=24 * 60, description="A claim within this many hours of the previous one extends the streak."
    )
    rewards: dict[str, DailyReward] = Field(
        default_factory=lambda: {"faylen": DailyReward(base=200, per_level=20),
                                 "virelite": DailyReward(base=10, per_level=1)},
        min_length=1, description="Per currency id, the reward.",
    )
    streak_bonus_percent: int = Field(10, ge=0, le=1000, description="Bonus per consecutive day after the first.")
    streak_max_days: int = Field(7, ge=1, le=365, description="The streak bonus stops growing after this many days.")


class Summon(Strict):
    """What summons cost and give."""

    currency: str = Field("faylen", description="The currency id summons are paid in.")
    single_cost: int = Field(100, ge=0, description="The price of one pull.")
    multi_cost: int = Field(900, ge=0, description="The price of a multi-summon.")
    multi_count: int = Field(10, ge=2, le=25, description="Pulls in a multi-summon (at most 25: one page each).")
    player_xp_per_pull: int = Field(10, ge=0, description="Player XP for each pull.")


class Pity(Strict):
    """The two pity counters, kept per player across summons."""

    guaranteed_rarity: str = Field("rare", description="The rarity (or better) the guarantee forces.")
    guaranteed_every: int = Field(
        10, ge=2, le=1000, description="The N-th pull since the last guaranteed-rarity-or-better one is forced to it."
    )
    hard_rarity: str = Field("legendary", description="The rarity hard pity forces.")
    hard_threshold: int = Field(
        90, ge=2, le=100_000, description="The N-th pull since the last hard-rarity-or-better one is forced to it."
    )


class Leveling(Strict):
    """Player and Esprit levels."""

    xp_per_level: int = Field(100, ge=1, description="Going from player level L to L+1 costs xp_per_level * L.")
    stat_growth_percent: int = Field(8, ge=0, le=1000, description="Stats grow by this % of their base per level.")
    esprit_xp_per_pull: int = Field(5, ge=0, description="XP the active Esprit gains for each pull.")
    esprit_xp_per_level: int = Field(50, ge=1, description="Going from Esprit level L to L+1 costs this * L.")


class Auction(Strict):
    """The auction house."""

    currencies: list[str] = Field(
        default_factory=lambda: ["faylen", "virelite", "gems"], min_length=1,
        description="Currency ids a listing may be priced in (the first is the default).",
    )
    min_price: int = Field(1, ge=1, description="The lowest asking price.")
    max_price: int = Field(100_000_000, ge=1, description="The highest asking price (at most balance_max).")
    page_size: int = Field(10, ge=1, le=25, description="Listings per page of /auction browse.")


DEFAULT_POLICY = (
    "By playing you agree that game currencies and Esprits have no real-world value, cannot be bought or sold "
    "for money, and may be reset by the server's administrators. Your Discord id and game progress are stored "
    "in this server's database."
)


class GameSettings(Strict):
    """Everything in ``game_settings.json``."""

    currencies: list[Currency] = Field(
        default_factory=lambda: list(DEFAULT_CURRENCIES), min_length=1, max_length=3,
        description="The currencies the game uses, by wallet column, with their names.",
    )
    balance_max: int = Field(1_000_000_000, ge=1, le=2**62, description="No balance goes above this.")
    starting: Starting = Field(default_factory=Starting)
    daily: Daily = Field(default_factory=Daily)
    summon: Summon = Field(default_factory=Summon)
    pity: Pity = Field(default_factory=Pity)
    leveling: Leveling = Field(default_factory=Leveling)
    auction: Auction = Field(default_factory=Auction)
    policy: str = Field(DEFAULT_POLICY, min_length=1, max_length=2000, description="Shown by /start.")
