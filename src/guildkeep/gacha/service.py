"""The gacha game's operations. Each takes plain ids and values and owns its transaction.

Money rules (docs/gacha.md):

- every currency or ownership change is ONE transaction of conditional statements
  (``UPDATE ... WHERE faylen >= :cost``, ``WHERE last_daily_at <= :period_start``,
  ``WHERE status = 'open'``) and writes ledger lines under the request's idempotency key;
- line 0 of a request is written first and is unique per (guild, key): a retried request finds it
  (or collides with it) and gets the first outcome back without changing anything again;
- balances never go below zero (conditional debit and a CHECK constraint) nor above
  ``balance_max`` (conditional credit).

Row locks are always taken in the same order (listing, then player rows by id, then copies), and
`Database.run` retries the rare deadlock or serialization conflict.
"""

from __future__ import annotations

import logging
import math
import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, case, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.cache import InvalidationBus
from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.db.ledger import MAX_REASON, Ledger, LedgerRequest, RequestRunningError
from guildkeep.errors import (
    InsufficientFundsError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from guildkeep.gacha import rules
from guildkeep.gacha.config import (
    ESPRITS_FILE,
    STAT_NAMES,
    TIERS_FILE,
    WALLET,
    GachaConfig,
    GachaConfigError,
    load_config,
)
from guildkeep.gacha.errors import (
    ActiveEspritNotForSaleError,
    AlreadySoldError,
    AlreadyStartedError,
    CannotAffordError,
    DailyNotReadyError,
    InEscrowError,
    ListingNotFoundError,
    ListingWithdrawnError,
    MemberNotStartedError,
    NoActiveEspritError,
    NotOwnedError,
    NotStartedError,
    SummonCountError,
    UnknownCurrencyError,
    UnknownRarityError,
)
from guildkeep.gacha.models import (
    LISTING_CANCELLED,
    LISTING_OPEN,
    LISTING_SOLD,
    AuctionListing,
    Esprit,
    LedgerEntry,
    Player,
    UserEsprit,
)
from guildkeep.gacha.results import (
    DailyResult,
    EspritInfo,
    GrantResult,
    ListingInfo,
    PlayerInfo,
    PullInfo,
    PurchaseResult,
    RankInfo,
    ResetResult,
    SeedResult,
    StartResult,
    SummonResult,
)
from guildkeep.identity.service import ensure_guild, ensure_member, ensure_user
from guildkeep.results import Page
from guildkeep.text import clean_text, strip_control

log = logging.getLogger(__name__)

PAGE_SIZE = 10
CATALOGUE_NAMESPACE = "gacha:catalogue"  # invalidation bus namespace of reseed notices
LEADERBOARD_KINDS = ("level", "currency", "xp")


class _Request(LedgerRequest):
    """A gacha request's ledger lines: money lines name a currency, ownership lines a copy."""

    def money(self, user_id: int, currency: str, amount: int, balance_after: int) -> None:
        """``amount`` of ``currency`` in (positive) or out (negative) of ``user_id``'s wallet; 0 is not written."""
        if amount:
            self.add(user_id, amount, currency=currency, balance_after=balance_after)

    def ownership(self, user_id: int, copy_id: int, amount: int) -> None:
        """``amount`` +1 when ``user_id`` gains the copy, -1 when they lose it, 0 for escrow in/out."""
        self.add(user_id, amount, user_esprit_id=copy_id)


ECHO_MAX = 100


def echo(text: str, limit: int = ECHO_MAX) -> str:
    """Player input quoted in a message: repr-quoted (control characters escaped), at most ``limit`` characters."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown)


# A stored outcome names nobody: ledger lines are anonymised when a player is forgotten, their JSON is not.
_PEOPLE = ("seller_id", "buyer_id")


def _listing_json(listing: ListingInfo) -> dict[str, Any]:
    """A sold listing as JSON for a request's stored outcome, without the people in it."""
    data = asdict(listing)
    for name in _PEOPLE:
        del data[name]
    del data["esprit"]["owner_id"]
    data["created_at"] = listing.created_at.isoformat()
    return data


def _listing_from_json(data: dict[str, Any], *, seller_id: int, buyer_id: int) -> ListingInfo:
    """The sold listing `_listing_json` stored, with its seller and buyer (who now owns the Esprit)."""
    fields = dict(data)
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    fields["esprit"] = EspritInfo(**fields["esprit"], owner_id=buyer_id)
    return ListingInfo(**fields, seller_id=seller_id, buyer_id=buyer_id)


def _pages(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


class GachaService:
    """The game's operations for every server; one instance per process, sharing the database."""

    def __init__(
        self,
        db: Database,
        config: GachaConfig | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
        config_dir: Path | None = None,
        bus: InvalidationBus | None = None,
    ) -> None:
        """The service over ``db``.

        ``config`` (else loaded from ``config_dir``), ``rng`` for rolls, ``clock`` for the daily reward, ``bus`` to
        hear and publish reseeds of the shared catalogue.
        """
        self.db = db
        self._ledger = Ledger(db, LedgerEntry, before_claim=ensure_guild)  # the ledger references the guild
        self.config_dir = config_dir
        self.config = config or load_config(config_dir)
        self.rng = rng or random.SystemRandom()
        self.clock = clock
        # The catalogue is shared by every process (shard): a reseed in one tells the others to reload.
        self.bus = bus
        if bus is not None:
            bus.register(CATALOGUE_NAMESPACE, self._on_reseed)

    def detach(self) -> None:
        """Stop listening for other processes' reseeds."""
        if self.bus is not None:
            self.bus.unregister(CATALOGUE_NAMESPACE, self._on_reseed)

    def _on_reseed(self, _guild_id: int | None, _key: Any) -> None:
        """Another process reseeded the shared catalogue: read the same files again."""
        try:
            self.config = load_config(self.config_dir)
        except GachaConfigError as exc:
            log.error("another process reseeded the gacha catalogue, but this one cannot read the config: %s", exc)
            return
        log.info("gacha config reloaded after a reseed in another process")

    # ------------------------------------------------------------------------------------------
    # helpers

    @property
    def _s(self) -> Any:
        return self.config.settings

    @property
    def _by_id(self) -> dict[str, Any]:
        return {e.id: e for e in self.config.esprits}

    def _currency(self, currency: str | None, *, allowed: Sequence[str] | None = None) -> str:
        """The currency id for an id or a name typed by a player (any case); refuses anything else."""
        choices = list(allowed or self.config.currency_ids)
        if currency is None:
            return choices[0]
        found = self.config.find_currency(currency)
        if found is None or found.id not in choices or found.id not in WALLET:
            names = ", ".join(self.config.currency(c).name for c in choices)
            raise UnknownCurrencyError(echo(currency), names)
        return found.id

    def resolve_currency(self, currency: str | None) -> str:
        """The currency id for what a player typed (None: the first currency)."""
        return self._currency(currency)

    def resolve_rarity(self, rarity: str) -> str:
        """The rarity id for a tier id or name typed by a player (any case); refuses anything else."""
        tier = self.config.find_tier(rarity)
        if tier is None:
            names = ", ".join(t.name for t in self.config.tiers[:25]) + (", …" if len(self.config.tiers) > 25 else "")
            raise UnknownRarityError(echo(rarity), names)
        return tier.id

    def _money(self, amount: int, currency: str) -> str:
        info = self.config.currency(currency)
        return f"{amount:,} {info.name}"

    def _rank_expr(self) -> Any:
        return case({t.id: rank for rank, t in enumerate(self.config.tiers)}, value=Esprit.rarity, else_=-1)

    def _esprit_info(self, copy: UserEsprit, entry: Esprit, active_id: int | None) -> EspritInfo:
        base = {name: getattr(entry, f"base_{name}") for name in STAT_NAMES}
        return EspritInfo(
            copy_id=copy.id, owner_id=copy.owner_id, esprit_id=entry.id, name=entry.name,
            description=entry.description, rarity=entry.rarity, element=entry.element, image=entry.image,
            level=copy.level, stats=rules.scale_stats(base, copy.level, self._s.leveling.stat_growth_percent),
            in_escrow=copy.in_escrow, is_active=copy.id == active_id,
        )

    def _player_info(self, p: Player) -> PlayerInfo:
        next_daily = p.last_daily_at + timedelta(hours=self._s.daily.cooldown_hours) if p.last_daily_at else None
        return PlayerInfo(
            guild_id=p.guild_id, user_id=p.user_id,
            balances={c: getattr(p, c) for c in self.config.currency_ids},
            level=p.level, xp=p.xp, xp_next_level=rules.xp_for_level(p.level + 1, self._s.leveling.xp_per_level),
            daily_streak=p.daily_streak, last_daily_at=p.last_daily_at, next_daily_at=next_daily,
            active_esprit_id=p.active_esprit_id, pity_guaranteed=p.pity_guaranteed, pity_hard=p.pity_hard,
            total_pulls=p.total_pulls,
        )

    async def _player(self, s: AsyncSession, guild_id: int, user_id: int, *, lock: bool = False) -> Player:
        stmt = select(Player).where(Player.guild_id == guild_id, Player.user_id == user_id)
        if lock:
            stmt = stmt.with_for_update()
        player = (await s.execute(stmt)).scalar_one_or_none()
        if player is None:
            raise NotStartedError()
        return player

    async def _copies(self, s: AsyncSession, guild_id: int, copy_ids: Sequence[int]) -> list[EspritInfo]:
        rows = (
            await s.execute(
                select(UserEsprit, Esprit, Player.active_esprit_id)
                .join(Esprit, Esprit.id == UserEsprit.esprit_id)
                .outerjoin(Player, and_(Player.guild_id == UserEsprit.guild_id, Player.user_id == UserEsprit.owner_id))
                .where(UserEsprit.guild_id == guild_id, UserEsprit.id.in_(copy_ids))
            )
        ).all()
        by_id = {copy.id: self._esprit_info(copy, entry, active) for copy, entry, active in rows}
        return [by_id[i] for i in copy_ids if i in by_id]

    async def _debit(self, s: AsyncSession, guild_id: int, user_id: int, currency: str, amount: int,
                     *, who: str = "you") -> int:
        """Conditional debit; returns the new balance or raises `InsufficientFundsError`.

        ``who`` is the subject of the refusal: "you" (the player) or "they" (a member an admin acts on).
        """
        column = getattr(Player, currency)
        new = (
            await s.execute(
                update(Player)
                .where(Player.guild_id == guild_id, Player.user_id == user_id, column >= amount)
                .values({column: column - amount, Player.updated_at: utcnow()})
                .returning(column)
            )
        ).scalar_one_or_none()
        if new is None:
            have = (await s.execute(
                select(column).where(Player.guild_id == guild_id, Player.user_id == user_id)
            )).scalar_one_or_none()
            if have is None:
                raise NotStartedError() if who == "you" else MemberNotStartedError()
            if who == "you":
                raise CannotAffordError(self._money(amount, currency), self._money(have, currency))
            raise InsufficientFundsError(
                f"They only have {self._money(have, currency)}, so {self._money(amount, currency)} cannot be taken."
            )
        return int(new)

    async def _credit(self, s: AsyncSession, guild_id: int, user_id: int, currency: str, amount: int,
                      *, who: str = "your") -> int:
        """Conditional credit up to ``balance_max``; returns the new balance or raises `ValidationError`."""
        column = getattr(Player, currency)
        limit = self._s.balance_max
        new = (
            await s.execute(
                update(Player)
                .where(Player.guild_id == guild_id, Player.user_id == user_id, column <= limit - amount)
                .values({column: column + amount, Player.updated_at: utcnow()})
                .returning(column)
            )
        ).scalar_one_or_none()
        if new is None:
            await self._player(s, guild_id, user_id)
            raise ValidationError(
                f"That would take {who} {self.config.currency(currency).name} above the maximum of "
                f"{self._money(limit, currency)}."
            )
        return int(new)

    # ------------------------------------------------------------------------------------------
    # catalogue

    async def seed_catalogue(self, config: GachaConfig | None = None) -> SeedResult:
        """Bring ``gacha_esprits`` in line with the config: insert new, update changed, retire removed.

        Idempotent; rows are never deleted, so owned copies always point at their entry. A config that drops
        a rarity tier which owned copies (in any server) still have is refused with `GachaConfigError`, and
        nothing changes: the service keeps its current config.
        """
        config = config or self.config
        tier_ids = [t.id for t in config.tiers]
        wanted = {
            e.id: {
                "name": e.name, "description": e.description, "rarity": e.rarity, "element": e.element,
                "image": e.image, "in_catalogue": True,
                **{f"base_{name}": getattr(e.base_stats, name) for name in STAT_NAMES},
            }
            for e in config.esprits
        }

        async def work(s: AsyncSession) -> SeedResult:
            orphaned = (
                await s.execute(
                    select(Esprit.rarity, func.count(UserEsprit.id))
                    .join(UserEsprit, UserEsprit.esprit_id == Esprit.id)
                    .where(Esprit.id.not_in(list(wanted)), Esprit.rarity.not_in(tier_ids))
                    .group_by(Esprit.rarity).order_by(Esprit.rarity)
                )
            ).first()
            if orphaned is not None:
                rarity, copies = orphaned
                raise GachaConfigError(
                    f"{TIERS_FILE}: entry {rarity!r}: the tier was removed but {copies} owned "
                    f"Esprit{'s' if copies != 1 else ''} still {'have' if copies != 1 else 'has'} this rarity; "
                    f"keep the tier and its Esprits in {ESPRITS_FILE}"
                )
            existing = {row.id: row for row in (await s.execute(select(Esprit))).scalars()}
            inserted = updated = unchanged = 0
            now = utcnow()
            for esprit_id, values in wanted.items():
                row = existing.get(esprit_id)
                if row is None:
                    stmt = insert_for(s, Esprit).values(id=esprit_id, created_at=now, updated_at=now, **values)
                    await s.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))
                    inserted += 1
                elif any(getattr(row, k) != v for k, v in values.items()):
                    await s.execute(update(Esprit).where(Esprit.id == esprit_id).values(updated_at=now, **values))
                    updated += 1
                else:
                    unchanged += 1
            retired = [i for i, row in existing.items() if i not in wanted and row.in_catalogue]
            if retired:
                await s.execute(
                    update(Esprit).where(Esprit.id.in_(retired)).values(in_catalogue=False, updated_at=now)
                )
            return SeedResult(inserted, updated, unchanged, len(retired))

        report = await self.db.run(work)
        self.config = config
        return report

    # ------------------------------------------------------------------------------------------
    # onboarding and wallet

    async def start(self, guild_id: int, user_id: int, *, username: str | None = None,
                    key: str | None = None) -> StartResult:
        """Accept the policy and create the player with the starting wallet and a random starter, once."""
        st = self._s.starting

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            await ensure_user(s, user_id, username)
            await ensure_member(s, guild_id, user_id)
            await self._ledger.claim(s, request)
            wallet = {c: st.currencies.get(c, 0) for c in WALLET}
            ins = insert_for(s, Player).values(
                guild_id=guild_id, user_id=user_id, level=st.level,
                xp=rules.xp_for_level(st.level, self._s.leveling.xp_per_level),
                policy_accepted_at=utcnow(), created_at=utcnow(), updated_at=utcnow(), **wallet,
            )
            ins = ins.on_conflict_do_nothing(index_elements=["guild_id", "user_id"]).returning(Player.id)
            if (await s.execute(ins)).scalar_one_or_none() is None:
                raise AlreadyStartedError()
            candidates = [e.id for r in st.starter_rarities for e in self.config.esprits_of(r)]
            starter = self._by_id[rules.pick(self.rng, candidates)]
            copy_id = (
                await s.execute(
                    insert(UserEsprit).values(
                        guild_id=guild_id, owner_id=user_id, esprit_id=starter.id, level=1,
                        current_hp=starter.base_stats.hp, obtained_via="starter", created_at=utcnow(),
                        updated_at=utcnow(),
                    ).returning(UserEsprit.id)
                )
            ).scalar_one()
            await s.execute(
                update(Player).where(Player.guild_id == guild_id, Player.user_id == user_id)
                .values(active_esprit_id=copy_id)
            )
            for currency, amount in wallet.items():
                request.money(user_id, currency, amount, amount)
            request.ownership(user_id, copy_id, 1)
            return await self._ledger.finish(s, request, {"copy_id": copy_id})

        request = _Request(guild_id, user_id, key, "start", "policy accepted, starter Esprit")

        result = await self._ledger.once(request, work)
        async with self.db.session(read_only=True) as s:
            player = self._player_info(await self._player(s, guild_id, user_id))
            (starter,) = await self._copies(s, guild_id, [result["copy_id"]])
        return StartResult(player, starter)

    async def has_started(self, guild_id: int, user_id: int) -> bool:
        """Whether the member has a wallet in this server."""
        async with self.db.session(read_only=True) as s:
            return bool(await s.scalar(
                select(exists().where(Player.guild_id == guild_id, Player.user_id == user_id))
            ))

    async def profile(self, guild_id: int, user_id: int) -> PlayerInfo:
        """The player's wallet, level, streak and pity counters; `NotStartedError` without a wallet."""
        async with self.db.session(read_only=True) as s:
            return self._player_info(await self._player(s, guild_id, user_id))

    balance = profile

    async def daily(self, guild_id: int, user_id: int, *, key: str | None = None) -> DailyResult:
        """Claim the daily reward: once per cooldown, scaled by level, with a streak bonus."""
        d = self._s.daily
        cooldown = timedelta(hours=d.cooldown_hours)

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            now = self.clock()
            player = await self._player(s, guild_id, user_id)
            if player.last_daily_at is not None and now - player.last_daily_at < cooldown:
                raise DailyNotReadyError(player.last_daily_at + cooldown)
            await self._ledger.claim(s, request)
            streak = rules.next_streak(player.last_daily_at, now, player.daily_streak,
                                       timedelta(hours=d.streak_window_hours))
            # The claim itself: only one request can move last_daily_at past the period start.
            claimed = (
                await s.execute(
                    update(Player)
                    .where(Player.id == player.id,
                           or_(Player.last_daily_at.is_(None), Player.last_daily_at <= now - cooldown))
                    .values(last_daily_at=now, daily_streak=streak, updated_at=now)
                    .returning(*(getattr(Player, c) for c in WALLET), Player.level)
                )
            ).first()
            if claimed is None:
                fresh = (await s.execute(select(Player.last_daily_at).where(Player.id == player.id))).scalar_one()
                raise DailyNotReadyError((fresh or now) + cooldown)
            balances = dict(zip(WALLET, claimed[:3], strict=True))
            amounts = rules.daily_rewards(
                {c: (r.base, r.per_level) for c, r in d.rewards.items()}, level=claimed[3], streak=streak,
                bonus_percent=d.streak_bonus_percent, max_days=d.streak_max_days,
            )
            paid = {}
            for currency, due in amounts.items():
                # The row is ours until commit (updated above), so clipping at the maximum is exact.
                amount = max(0, min(due, self._s.balance_max - balances[currency]))
                paid[currency] = amount
                if amount:
                    balances[currency] = await self._credit(s, guild_id, user_id, currency, amount)
                request.money(user_id, currency, amount, balances[currency])
            return await self._ledger.finish(s, request, {
                "paid": paid, "streak": streak, "next": (now + cooldown).isoformat(),
                "balances": {c: balances[c] for c in self.config.currency_ids},
            })

        request = _Request(guild_id, user_id, key, "daily", "daily reward")

        result = await self._ledger.once(request, work)
        return DailyResult(result["paid"], result["streak"], datetime.fromisoformat(result["next"]),
                           result["balances"])

    async def grant(self, guild_id: int, admin_id: int, user_id: int, *, amount: int, currency: str | None,
                    reason: str, key: str | None = None) -> GrantResult:
        """An administrator adds (or, with a negative amount, removes) currency, with a reason."""
        currency = self._currency(currency)
        reason = clean_text(reason or "", "The reason", max_length=250, min_length=0)
        if not any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc") for ch in reason):
            raise ValidationError("Give a reason for the grant; it is written to the ledger.")
        if amount == 0 or abs(amount) > self._s.balance_max:
            raise ValidationError(f"The amount must be non-zero and at most {self._s.balance_max:,}.")

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            await self._ledger.claim(s, request)
            if amount > 0:
                after = await self._credit(s, guild_id, user_id, currency, amount, who="their")
            else:
                after = await self._debit(s, guild_id, user_id, currency, -amount, who="they")
            request.money(user_id, currency, amount, after)
            return await self._ledger.finish(s, request, {"balance": after})

        try:
            request = _Request(guild_id, user_id, key, "grant", f"by {admin_id}: {reason}")
            result = await self._ledger.once(request, work)
        except NotStartedError as exc:
            raise MemberNotStartedError() from exc
        return GrantResult(user_id, currency, amount, result["balance"])

    # ------------------------------------------------------------------------------------------
    # summons

    async def check_summon(self, guild_id: int, user_id: int, count: int) -> None:
        """Refuse a summon that cannot happen (wrong count, not started, cannot afford) without changing anything.

        A quick read, so a command can answer a refusal privately before it starts a (public) summon; the summon
        itself checks again in its transaction.
        """
        sm = self._s.summon
        if count not in (1, sm.multi_count):
            raise SummonCountError(sm.multi_count)
        cost = sm.single_cost if count == 1 else sm.multi_cost
        async with self.db.session(read_only=True) as s:
            have = getattr(await self._player(s, guild_id, user_id), sm.currency)
        if have < cost:
            raise CannotAffordError(self._money(cost, sm.currency), self._money(have, sm.currency))

    async def summon(self, guild_id: int, user_id: int, count: int, *, key: str | None = None) -> SummonResult:
        """Pull 1 or ``multi_count`` Esprits: the cost is debited conditionally, pity counters persist."""
        sm = self._s.summon
        if count not in (1, sm.multi_count):
            raise SummonCountError(sm.multi_count)
        cost = sm.single_cost if count == 1 else sm.multi_cost
        tiers = [rules.Tier(t.id, t.weight) for t in self.config.tiers]
        pity = rules.PityRules(
            guaranteed_rank=self.config.rarity_rank(self._s.pity.guaranteed_rarity),
            guaranteed_every=self._s.pity.guaranteed_every,
            hard_rank=self.config.rarity_rank(self._s.pity.hard_rarity),
            hard_threshold=self._s.pity.hard_threshold,
        )

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            await self._ledger.claim(s, request)
            balance = await self._debit(s, guild_id, user_id, sm.currency, cost)
            # The debit locked the player row: these counters cannot change under us.
            player = await self._player(s, guild_id, user_id)
            pulls, state = rules.summon(self.rng, count, tiers, pity,
                                        rules.PityState(player.pity_guaranteed, player.pity_hard))
            entries = [
                self._by_id[rules.pick(self.rng, [e.id for e in self.config.esprits_of(p.rarity)])] for p in pulls
            ]
            now = utcnow()
            copy_ids = list((
                await s.execute(
                    insert(UserEsprit).returning(UserEsprit.id, sort_by_parameter_order=True),
                    [{"guild_id": guild_id, "owner_id": user_id, "esprit_id": e.id, "level": 1,
                      "current_hp": e.base_stats.hp, "obtained_via": "summon", "created_at": now,
                      "updated_at": now, "xp": 0, "in_escrow": False} for e in entries],
                )
            ).scalars())
            xp = player.xp + sm.player_xp_per_pull * count
            level = max(player.level, rules.level_for_xp(xp, self._s.leveling.xp_per_level))
            await s.execute(
                update(Player).where(Player.id == player.id).values(
                    pity_guaranteed=state.since_guaranteed, pity_hard=state.since_hard,
                    total_pulls=Player.total_pulls + count, xp=xp, level=level, updated_at=now,
                )
            )
            active = await self._train_active(s, player, count)
            request.money(user_id, sm.currency, -cost, balance)
            for copy_id in copy_ids:
                request.ownership(user_id, copy_id, 1)
            return await self._ledger.finish(s, request, {
                "copies": copy_ids, "forced": [p.forced for p in pulls], "cost": cost, "currency": sm.currency,
                "balance": balance, "pity": [state.since_guaranteed, state.since_hard], "level": level,
                "active": active,
            })

        request = _Request(guild_id, user_id, key, "summon", f"summon x{count}")

        result = await self._ledger.once(request, work)
        async with self.db.session(read_only=True) as s:
            views = await self._copies(s, guild_id, result["copies"])
        by_id = {v.copy_id: v for v in views}
        pulls = [PullInfo(by_id[c], f) for c, f in zip(result["copies"], result["forced"], strict=True)
                 if c in by_id]
        return SummonResult(pulls, result["cost"], result["currency"], result["balance"], result["pity"][0],
                            result["pity"][1], result["level"], result.get("active"))

    async def _train_active(self, s: AsyncSession, player: Player, pulls: int) -> list[int] | None:
        """The active Esprit gains XP for each pull; returns [copy id, level before, level after]."""
        lv = self._s.leveling
        if player.active_esprit_id is None or lv.esprit_xp_per_pull == 0:
            return None
        row = (
            await s.execute(
                update(UserEsprit)
                .where(UserEsprit.id == player.active_esprit_id, UserEsprit.owner_id == player.user_id,
                       UserEsprit.guild_id == player.guild_id)
                .values(xp=UserEsprit.xp + lv.esprit_xp_per_pull * pulls, updated_at=utcnow())
                .returning(UserEsprit.xp, UserEsprit.level, UserEsprit.esprit_id)
            )
        ).first()
        if row is None:
            return None
        xp, before, esprit_id = row
        after = max(before, rules.level_for_xp(xp, lv.esprit_xp_per_level))
        if after != before:
            base_hp = self._by_id[esprit_id].base_stats.hp if esprit_id in self._by_id else 1
            await s.execute(
                update(UserEsprit).where(UserEsprit.id == player.active_esprit_id).values(
                    level=after, current_hp=rules.scale_stats({"hp": base_hp}, after, lv.stat_growth_percent)["hp"],
                )
            )
        return [player.active_esprit_id, before, after]

    # ------------------------------------------------------------------------------------------
    # collection

    def _owned(self, guild_id: int, user_id: int) -> Select[UserEsprit, Esprit]:
        return (
            select(UserEsprit, Esprit)
            .join(Esprit, Esprit.id == UserEsprit.esprit_id)
            .where(UserEsprit.guild_id == guild_id, UserEsprit.owner_id == user_id)
        )

    async def inventory(self, guild_id: int, user_id: int, *, page: int = 1, rarity: str | None = None,
                        page_size: int = PAGE_SIZE) -> Page[EspritInfo]:
        """A page of the player's Esprits (strongest rarity first), optionally of one rarity."""
        if rarity is not None:
            rarity = self.resolve_rarity(rarity)
        async with self.db.session(read_only=True) as s:
            player = await self._player(s, guild_id, user_id)
            stmt = self._owned(guild_id, user_id)
            if rarity:
                stmt = stmt.where(Esprit.rarity == rarity)
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            pages = _pages(total, page_size)
            page = min(max(page, 1), pages)
            rows = (
                await s.execute(
                    stmt.order_by(self._rank_expr().desc(), UserEsprit.level.desc(), Esprit.name, UserEsprit.id)
                    .offset((page - 1) * page_size).limit(page_size)
                )
            ).all()
            items = [self._esprit_info(copy, entry, player.active_esprit_id) for copy, entry in rows]
        return Page(items, page, pages, total)

    async def show(self, guild_id: int, user_id: int, copy_id: int | None = None) -> EspritInfo:
        """One owned copy; without ``copy_id`` the active one."""
        async with self.db.session(read_only=True) as s:
            player = await self._player(s, guild_id, user_id)
            copy_id = copy_id if copy_id is not None else player.active_esprit_id
            if copy_id is None:
                raise NoActiveEspritError()
            row = (await s.execute(self._owned(guild_id, user_id).where(UserEsprit.id == copy_id))).first()
            if row is None:
                raise NotOwnedError(copy_id)
            return self._esprit_info(row[0], row[1], player.active_esprit_id)

    async def set_active(self, guild_id: int, user_id: int, copy_id: int) -> EspritInfo:
        """Make an owned copy that is not at auction the active one.

        Locks the player's row, then the copy's row (the order `list_for_sale` uses), and decides on the
        copy as it is once locked: a listing that raced this request is seen, never a stale snapshot.
        """

        async def work(s: AsyncSession) -> None:
            await self._player(s, guild_id, user_id, lock=True)
            copy = (
                await s.execute(
                    select(UserEsprit.owner_id, UserEsprit.in_escrow)
                    .where(UserEsprit.id == copy_id, UserEsprit.guild_id == guild_id)
                    .with_for_update()
                )
            ).first()
            if copy is None or copy.owner_id != user_id:
                raise NotOwnedError(copy_id)
            if copy.in_escrow:
                raise InEscrowError()
            await s.execute(
                update(Player).where(Player.guild_id == guild_id, Player.user_id == user_id)
                .values(active_esprit_id=copy_id, updated_at=utcnow())
            )

        await self.db.run(work)
        return await self.show(guild_id, user_id, copy_id)

    async def owned_choices(self, guild_id: int, user_id: int, query: str = "", *, limit: int = 25,
                            tradable_only: bool = False) -> list[EspritInfo]:
        """Copies whose name contains ``query``, for autocomplete."""
        async with self.db.session(read_only=True) as s:
            active = (await s.execute(
                select(Player.active_esprit_id).where(Player.guild_id == guild_id, Player.user_id == user_id)
            )).scalar_one_or_none()
            stmt = self._owned(guild_id, user_id)
            query = strip_control(query).strip()[:100]
            if query:
                stmt = stmt.where(func.lower(Esprit.name).contains(query.lower(), autoescape=True))
            if tradable_only:
                stmt = stmt.where(UserEsprit.in_escrow.is_(False))
            rows = (await s.execute(
                stmt.order_by(self._rank_expr().desc(), Esprit.name, UserEsprit.id).limit(limit)
            )).all()
            views = [self._esprit_info(c, e, active) for c, e in rows]
        return [v for v in views if not (tradable_only and v.is_active)]

    async def leaderboard(self, guild_id: int, by: str = "level", *, page: int = 1, currency: str | None = None,
                          page_size: int = PAGE_SIZE) -> Page[RankInfo]:
        """A page of the server's players ranked ``by`` level, xp or a currency."""
        if by not in LEADERBOARD_KINDS:
            raise ValidationError(f"Rank by one of: {', '.join(LEADERBOARD_KINDS)}.")
        value = {
            "level": Player.level,
            "xp": Player.xp,
            "currency": getattr(Player, self._currency(currency)),
        }[by]
        async with self.db.session(read_only=True) as s:
            total = (await s.execute(select(func.count()).where(Player.guild_id == guild_id))).scalar_one()
            pages = _pages(total, page_size)
            page = min(max(page, 1), pages)
            rows = (
                await s.execute(
                    select(Player.user_id, value, Player.level).where(Player.guild_id == guild_id)
                    .order_by(value.desc(), Player.xp.desc(), Player.created_at, Player.user_id)
                    .offset((page - 1) * page_size).limit(page_size)
                )
            ).all()
        start = (page - 1) * page_size
        items = [RankInfo(start + i + 1, uid, int(v), lvl) for i, (uid, v, lvl) in enumerate(rows)]
        return Page(items, page, pages, total)

    # ------------------------------------------------------------------------------------------
    # auction house

    async def _listings(self, s: AsyncSession, guild_id: int, listing_ids: Sequence[int]) -> list[ListingInfo]:
        rows = (
            await s.execute(select(AuctionListing).where(AuctionListing.guild_id == guild_id,
                                                         AuctionListing.id.in_(listing_ids)))
        ).scalars().all()
        copies = {v.copy_id: v for v in await self._copies(s, guild_id, [r.user_esprit_id for r in rows])}
        by_id = {
            r.id: ListingInfo(r.id, r.seller_id, r.price, r.currency, r.status, r.buyer_id, r.created_at,
                              copies[r.user_esprit_id])
            for r in rows if r.user_esprit_id in copies
        }
        return [by_id[i] for i in listing_ids if i in by_id]

    async def list_for_sale(self, guild_id: int, seller_id: int, copy_id: int, price: int,
                            currency: str | None = None, *, key: str | None = None) -> ListingInfo:
        """Put an owned copy up for sale. It goes into escrow: not usable, not listable twice."""
        a = self._s.auction
        currency = self._currency(currency or a.currencies[0], allowed=a.currencies)
        if not a.min_price <= price <= a.max_price:
            low, high = self._money(a.min_price, currency), self._money(a.max_price, currency)
            raise ValidationError(f"The price must be between {low} and {high}.")

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            # Lock the seller's row first: set-active takes the same lock, so the two cannot interleave.
            active = (
                await s.execute(
                    update(Player).where(Player.guild_id == guild_id, Player.user_id == seller_id)
                    .values(updated_at=utcnow()).returning(Player.active_esprit_id)
                )
            ).first()
            if active is None:
                raise NotStartedError()
            if active[0] == copy_id:
                raise ActiveEspritNotForSaleError()
            await self._ledger.claim(s, request)
            # Conditional on the copy's row too: never escrow the copy the (locked) player row points at.
            not_active = ~exists().where(Player.guild_id == guild_id, Player.user_id == seller_id,
                                         Player.active_esprit_id == copy_id)
            escrowed = (
                await s.execute(
                    update(UserEsprit)
                    .where(UserEsprit.id == copy_id, UserEsprit.guild_id == guild_id,
                           UserEsprit.owner_id == seller_id, UserEsprit.in_escrow.is_(False), not_active)
                    .values(in_escrow=True, updated_at=utcnow()).returning(UserEsprit.id)
                )
            ).scalar_one_or_none()
            if escrowed is None:
                copy = await s.get(UserEsprit, copy_id)
                if copy is not None and copy.guild_id == guild_id and copy.owner_id == seller_id:
                    raise InEscrowError("That Esprit is already listed at auction.")
                raise NotOwnedError(copy_id)
            listing_id = (
                await s.execute(
                    insert(AuctionListing).values(
                        guild_id=guild_id, seller_id=seller_id, user_esprit_id=copy_id, price=price,
                        currency=currency, status=LISTING_OPEN, created_at=utcnow(),
                    ).returning(AuctionListing.id)
                )
            ).scalar_one()
            request.ownership(seller_id, copy_id, 0)
            return await self._ledger.finish(s, request, {"listing_id": listing_id})

        request = _Request(guild_id, seller_id, key, "auction_list", f"listed for {price} {currency}")

        result = await self._ledger.once(request, work)
        return await self.listing(guild_id, result["listing_id"])

    async def listing(self, guild_id: int, listing_id: int) -> ListingInfo:
        """One listing of this server; `ListingNotFoundError` when there is none."""
        async with self.db.session(read_only=True) as s:
            found = await self._listings(s, guild_id, [listing_id])
        if not found:
            raise ListingNotFoundError(listing_id)
        return found[0]

    async def browse(self, guild_id: int, *, page: int = 1, rarity: str | None = None,
                     seller_id: int | None = None, page_size: int | None = None) -> Page[ListingInfo]:
        """A page of this server's open listings (newest first), optionally of one rarity or seller."""
        page_size = page_size or self._s.auction.page_size
        if rarity is not None:
            rarity = self.resolve_rarity(rarity)
        stmt = (
            select(AuctionListing.id)
            .join(UserEsprit, UserEsprit.id == AuctionListing.user_esprit_id)
            .join(Esprit, Esprit.id == UserEsprit.esprit_id)
            .where(AuctionListing.guild_id == guild_id, AuctionListing.status == LISTING_OPEN)
        )
        if rarity:
            stmt = stmt.where(Esprit.rarity == rarity)
        if seller_id is not None:
            stmt = stmt.where(AuctionListing.seller_id == seller_id)
        async with self.db.session(read_only=True) as s:
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            pages = _pages(total, page_size)
            page = min(max(page, 1), pages)
            ids = list((await s.execute(
                stmt.order_by(AuctionListing.created_at.desc(), AuctionListing.id.desc())
                .offset((page - 1) * page_size).limit(page_size)
            )).scalars())
            items = await self._listings(s, guild_id, ids)
        return Page(items, page, pages, total)

    async def buy(self, guild_id: int, buyer_id: int, listing_id: int, *, key: str | None = None) -> PurchaseResult:
        """Currency and ownership move in one transaction; of several buyers exactly one wins."""
        this_sale: list[ListingInfo] = []  # the listing as this call sold it

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            await self._player(s, guild_id, buyer_id)
            await self._ledger.claim(s, request)
            now = utcnow()
            won = (
                await s.execute(
                    update(AuctionListing)
                    .where(AuctionListing.id == listing_id, AuctionListing.guild_id == guild_id,
                           AuctionListing.status == LISTING_OPEN, AuctionListing.seller_id != buyer_id)
                    .values(status=LISTING_SOLD, buyer_id=buyer_id, closed_at=now)
                    .returning(AuctionListing.seller_id, AuctionListing.price, AuctionListing.currency,
                               AuctionListing.user_esprit_id)
                )
            ).first()
            if won is None:
                listing = await s.get(AuctionListing, listing_id)
                if listing is None or listing.guild_id != guild_id:
                    raise ListingNotFoundError(listing_id)
                if listing.seller_id == buyer_id and listing.status == LISTING_OPEN:
                    raise PermissionDeniedError("That is your own listing; use /auction cancel to withdraw it.")
                if listing.status == LISTING_CANCELLED:
                    raise ListingWithdrawnError()
                raise AlreadySoldError()
            seller_id, price, currency, copy_id = won
            # Lock both wallets in id order so two crossing purchases cannot deadlock.
            await s.execute(
                select(Player.id).where(Player.guild_id == guild_id, Player.user_id.in_([buyer_id, seller_id]))
                .order_by(Player.id).with_for_update()
            )
            buyer_balance = await self._debit(s, guild_id, buyer_id, currency, price)
            seller_balance = await self._credit(s, guild_id, seller_id, currency, price, who="the seller's")
            moved = (
                await s.execute(
                    update(UserEsprit)
                    .where(UserEsprit.id == copy_id, UserEsprit.owner_id == seller_id, UserEsprit.in_escrow.is_(True))
                    .values(owner_id=buyer_id, in_escrow=False, updated_at=now)
                    .returning(UserEsprit.id)
                )
            ).scalar_one_or_none()
            if moved is None:
                raise AlreadySoldError()
            await s.execute(
                update(Player).where(Player.guild_id == guild_id, Player.user_id == seller_id,
                                     Player.active_esprit_id == copy_id)
                .values(active_esprit_id=None)
            )
            request.money(buyer_id, currency, -price, buyer_balance)
            request.money(seller_id, currency, price, seller_balance)
            request.ownership(seller_id, copy_id, -1)
            request.ownership(buyer_id, copy_id, 1)
            # The reply is built from the sale as it happened, not read again later: a listing that vanishes
            # afterwards (a reset, a forgotten seller) cannot turn a purchase into a "not found".
            (sold,) = await self._listings(s, guild_id, [listing_id])
            this_sale.append(sold)
            return await self._ledger.finish(s, request, {"listing_id": listing_id, "buyer_balance": buyer_balance,
                                                         "seller_balance": seller_balance,
                                                         "listing": _listing_json(sold)})

        request = _Request(guild_id, buyer_id, key, "auction_buy", f"bought listing #{listing_id}")

        result = await self._ledger.once(request, work)
        if this_sale and not result.get("replayed"):
            listing = this_sale[-1]
        elif "listing" in result:  # a retry: the sale as stored, the seller from its ledger lines
            listing = _listing_from_json(result["listing"], seller_id=await self._seller_of(request),
                                         buyer_id=buyer_id)
        else:  # a sale recorded before outcomes held the listing
            listing = await self.listing(guild_id, result["listing_id"])
        return PurchaseResult(listing, result["buyer_balance"], result["seller_balance"])

    async def _seller_of(self, request: _Request) -> int:
        """Who lost the Esprit in a recorded purchase (the anonymous id once they are forgotten)."""
        async with self.db.session(read_only=True) as s:
            seller = (await s.execute(
                select(LedgerEntry.user_id).where(
                    LedgerEntry.guild_id == request.guild_id, LedgerEntry.idempotency_key == request.key,
                    LedgerEntry.line > 0, LedgerEntry.user_esprit_id.is_not(None), LedgerEntry.amount < 0)
            )).scalars().first()
        return int(seller) if seller is not None else 0

    async def cancel_listing(self, guild_id: int, seller_id: int, listing_id: int, *,
                             key: str | None = None) -> ListingInfo:
        """The seller withdraws an open listing; the Esprit leaves escrow. Idempotent by ``key``."""
        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            await self._ledger.claim(s, request)
            cancelled = (
                await s.execute(
                    update(AuctionListing)
                    .where(AuctionListing.id == listing_id, AuctionListing.guild_id == guild_id,
                           AuctionListing.seller_id == seller_id, AuctionListing.status == LISTING_OPEN)
                    .values(status=LISTING_CANCELLED, closed_at=utcnow())
                    .returning(AuctionListing.user_esprit_id)
                )
            ).scalar_one_or_none()
            if cancelled is None:
                listing = await s.get(AuctionListing, listing_id)
                if listing is None or listing.guild_id != guild_id or listing.seller_id != seller_id:
                    raise NotFoundError(f"You have no listing #{listing_id}.")
                if listing.status == LISTING_SOLD:
                    raise AlreadySoldError("That listing has already been sold.")
                raise ValidationError("That listing is already withdrawn.")
            await s.execute(
                update(UserEsprit).where(UserEsprit.id == cancelled, UserEsprit.owner_id == seller_id)
                .values(in_escrow=False, updated_at=utcnow())
            )
            request.ownership(seller_id, cancelled, 0)
            return await self._ledger.finish(s, request, {"listing_id": listing_id})

        request = _Request(guild_id, seller_id, key, "auction_cancel", f"withdrew listing #{listing_id}")

        result = await self._ledger.once(request, work)
        return await self.listing(guild_id, result["listing_id"])

    # ------------------------------------------------------------------------------------------
    # administration

    async def reset(self, guild_id: int, admin_id: int, backup_dir: Path, *, key: str | None = None) -> ResetResult:
        """Back up the database, then delete this server's players, copies and listings and reseed.

        The ledger is append-only and survives: the reset writes a reversing line for every balance and
        every copy it deletes (so ledger sums still equal balances and owners), and line 0 records who did
        it and the backup. The key is claimed before the backup, so a retried request (same key) replays the
        first outcome and takes no second backup, and a duplicate that arrives while the first runs is refused.
        """
        from guildkeep.db.backup import create_backup

        request = _Request(guild_id, admin_id, key, "reset", "game reset")
        try:
            done = await self._ledger.reserve(request)
        except RequestRunningError as exc:
            raise RequestRunningError("That reset is already running; nothing more was done.") from exc
        if done is not None:
            return ResetResult(Path(done["backup"]), done["players"], done["esprits"], done["listings"],
                               replayed=True)

        try:
            backup = await create_backup(self.db, backup_dir)
        except BaseException:
            await self._ledger.release(request)  # nothing was reset: the same request can be tried again
            raise

        async def work(s: AsyncSession, request: _Request) -> dict[str, Any]:
            request.reason = f"game reset, backup {backup.name}"[:MAX_REASON]
            # The reversing lines are built from what the DELETEs return: exactly what was wiped, even if a
            # request of another shard committed a moment before.
            deleted = await s.execute(delete(AuctionListing).where(AuctionListing.guild_id == guild_id))
            listings: int = deleted.rowcount  # type: ignore[attr-defined]  # a CursorResult
            players = (await s.execute(
                delete(Player).where(Player.guild_id == guild_id)
                .returning(Player.user_id, *(getattr(Player, c) for c in WALLET))
            )).all()
            copies = (await s.execute(
                delete(UserEsprit).where(UserEsprit.guild_id == guild_id).returning(UserEsprit.id, UserEsprit.owner_id)
            )).all()
            for user_id, *balances in sorted(players):
                for currency, balance in zip(WALLET, balances, strict=True):
                    request.money(user_id, currency, -balance, 0)
            for copy_id, owner_id in sorted(copies):
                request.ownership(owner_id, copy_id, -1)
            return await self._ledger.finish(s, request, {"players": len(players), "esprits": len(copies),
                                                         "listings": listings, "backup": str(backup)})

        result = await self._ledger.complete(request, work)
        seed = await self.seed_catalogue()
        return ResetResult(backup, result["players"], result["esprits"], result["listings"], seed)

    async def reseed(self, config_dir: Path | None = None) -> SeedResult:
        """Reload the JSON config (from ``config_dir``, else the service's) and bring the catalogue in line.

        Every other process on the invalidation bus reloads its config too, so all shards roll the same tiers.
        """
        report = await self.seed_catalogue(load_config(config_dir or self.config_dir))
        if self.bus is not None:
            self.bus.publish(CATALOGUE_NAMESPACE, None, "reseed", source=self._on_reseed)
        return report

    async def ledger(self, guild_id: int, user_id: int | None = None, *, limit: int = 100) -> list[LedgerEntry]:
        """Recent ledger lines (newest first), for audits and tests."""
        async with self.db.session(read_only=True) as s:
            stmt = select(LedgerEntry).where(LedgerEntry.guild_id == guild_id)
            if user_id is not None:
                stmt = stmt.where(LedgerEntry.user_id == user_id)
            return list((await s.execute(stmt.order_by(LedgerEntry.id.desc()).limit(limit))).scalars())

    async def reconcile(self, guild_id: int) -> list[str]:
        """Check this server's ledger against its state; returns the problems found (empty: it reconciles).

        - per player and currency, the ledger's money lines sum to the balance (to 0 for someone with no wallet);
        - per copy, the ledger's ownership lines sum to +1 for its owner and 0 for everyone else, and to 0 for a
          copy that no longer exists;
        - a copy is in escrow exactly when one open listing holds it;
        - an active Esprit is a copy its player owns that is not in escrow.
        """
        problems: list[str] = []
        async with self.db.session(read_only=True) as s:
            money = {
                (user_id, currency): int(total)
                for user_id, currency, total in await s.execute(
                    select(LedgerEntry.user_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
                    .where(LedgerEntry.guild_id == guild_id, LedgerEntry.line > 0, LedgerEntry.currency.is_not(None))
                    .group_by(LedgerEntry.user_id, LedgerEntry.currency)
                )
            }
            owned: dict[tuple[int, int], int] = {
                (user_id, copy_id): int(total)
                for user_id, copy_id, total in await s.execute(
                    select(LedgerEntry.user_id, LedgerEntry.user_esprit_id, func.sum(LedgerEntry.amount))
                    .where(LedgerEntry.guild_id == guild_id, LedgerEntry.line > 0,
                           LedgerEntry.user_esprit_id.is_not(None))
                    .group_by(LedgerEntry.user_id, LedgerEntry.user_esprit_id)
                )
                if copy_id is not None
            }
            players = (await s.execute(select(Player).where(Player.guild_id == guild_id))).scalars().all()
            copies = {c.id: c for c in (await s.execute(
                select(UserEsprit).where(UserEsprit.guild_id == guild_id))).scalars()}
            open_listings: dict[int, int] = {}
            for (copy_id,) in await s.execute(
                select(AuctionListing.user_esprit_id).where(AuctionListing.guild_id == guild_id,
                                                            AuctionListing.status == LISTING_OPEN)
            ):
                open_listings[copy_id] = open_listings.get(copy_id, 0) + 1

        wallets = {p.user_id: p for p in players}
        for user_id in sorted({u for u, _ in money} | set(wallets)):
            for currency in WALLET:
                have = getattr(wallets[user_id], currency) if user_id in wallets else 0
                total = money.get((user_id, currency), 0)
                if total != have:
                    problems.append(f"user {user_id} {currency}: ledger says {total}, balance is {have}")
        for (user_id, copy_id), total in sorted(owned.items()):
            copy = copies.get(copy_id)
            expected = 1 if copy is not None and copy.owner_id == user_id else 0
            if total != expected:
                problems.append(f"copy {copy_id} user {user_id}: ledger says {total}, expected {expected}")
        for copy_id, copy in sorted(copies.items()):
            if (copy.owner_id, copy_id) not in owned:
                problems.append(f"copy {copy_id}: owned by {copy.owner_id} with no ledger line")
            if copy.in_escrow != (open_listings.get(copy_id, 0) == 1) or open_listings.get(copy_id, 0) > 1:
                problems.append(f"copy {copy_id}: in_escrow={copy.in_escrow} with {open_listings.get(copy_id, 0)} "
                                "open listings")
        for p in players:
            if p.active_esprit_id is None:
                continue
            copy = copies.get(p.active_esprit_id)
            if copy is None or copy.owner_id != p.user_id or copy.in_escrow:
                problems.append(f"user {p.user_id}: active Esprit {p.active_esprit_id} is not an owned, usable copy")
        return problems
