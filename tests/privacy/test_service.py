"""Export and forget across every module, on both databases."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Table, select

from guildkeep.db import Base, Database
from guildkeep.db.registry import load_models
from guildkeep.errors import DomainError, ValidationError
from guildkeep.gacha.config import WALLET, load_config
from guildkeep.gacha.models import AuctionListing, LedgerEntry, Player, UserEsprit
from guildkeep.gacha.privacy import ANONYMOUS_USER_ID
from guildkeep.gacha.service import GachaService
from guildkeep.privacy import PrivacyService, load_providers
from guildkeep.scheduler.privacy import names_user
from tests.privacy.conftest import ANN, BOB, GUILD, OTHER_GUILD, World

# Columns that hold a user id without a foreign key to users.id (found by reading every module's models).
USER_COLUMN_NAMES = frozenset({
    "user_id", "owner_id", "seller_id", "buyer_id", "created_by", "admin_id", "author_id", "creator_id",
    "speaker_id", "member_id", "target_id", "granted_by",
})


def _references_users(column: Column[Any]) -> bool:
    fks: set[ForeignKey] = column.foreign_keys  # type: ignore[assignment]
    return any(fk.target_fullname == "users.id" for fk in fks)


def user_columns() -> list[tuple[Table, Column[Any]]]:
    """Every column, in every module's tables, that holds a user id."""
    load_models()
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if (table.name == "users" and column.name == "id") or column.name in USER_COLUMN_NAMES \
                    or _references_users(column):
                found.append((table, column))
    return found


async def rows_naming(db: Database, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table with the id in a user column, or anywhere in its text or JSON."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    columns = defaultdict(list)
    for table, column in user_columns():
        columns[table.name].append(column.name)
    async with db.session(read_only=True) as s:
        for table in Base.metadata.sorted_tables:
            for row in (await s.execute(select(table))).mappings():
                values = dict(row)
                hit = any(values[name] == user_id for name in columns[table.name])
                hit = hit or any(str(user_id) in json.dumps(v, default=str) for v in values.values()
                                 if not isinstance(v, int))
                if hit:
                    found[table.name].append(values)
    return found


async def assert_ledger_reconciles(db: Database) -> None:
    """Each player's ledger lines sum to their balances and copies; the anonymous account to zero."""
    async with db.session(read_only=True) as s:
        lines = (await s.execute(select(LedgerEntry).where(LedgerEntry.line > 0))).scalars().all()
        players = (await s.execute(select(Player))).scalars().all()
        copies = (await s.execute(select(UserEsprit))).scalars().all()
    money: dict[tuple[int, int, str], int] = defaultdict(int)
    owned: dict[tuple[int, int, int], int] = defaultdict(int)
    for line in lines:
        if line.currency is not None:
            money[line.guild_id, line.user_id, line.currency] += line.amount
        elif line.user_esprit_id is not None:
            owned[line.guild_id, line.user_id, line.user_esprit_id] += line.amount
    for p in players:
        for currency in WALLET:
            assert getattr(p, currency) == money[p.guild_id, p.user_id, currency], (p.user_id, currency)
    for c in copies:
        assert owned[c.guild_id, c.owner_id, c.id] == 1, c.id
    assert sum(owned.values()) == len(copies)
    anonymous = {k: v for k, v in {**money, **owned}.items() if k[1] == ANONYMOUS_USER_ID}
    assert all(v == 0 for v in anonymous.values()), anonymous
    reconcile = getattr(GachaService(db, load_config()), "reconcile", None)  # the service's own audit, where it has one
    if reconcile is not None:
        for guild_id in sorted({line.guild_id for line in lines}):
            assert await reconcile(guild_id) == [], guild_id


def _key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in Base.metadata.tables[table].primary_key.columns)


async def snapshot(db: Database, user_id: int, *, besides: int,
                   shared: dict[str, set[tuple[Any, ...]]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The rows naming ``user_id``, leaving out those that also name(d) ``besides`` (their shared trades;
    ``shared`` holds the keys of those rows as they were before a forget)."""
    theirs = await rows_naming(db, user_id)
    shared = shared if shared is not None else await shared_keys(db, user_id, besides)
    kept = {t: [r for r in rows if _key(t, r) not in shared.get(t, set())] for t, rows in theirs.items()}
    return {t: rows for t, rows in kept.items() if rows}


async def shared_keys(db: Database, user_id: int, besides: int) -> dict[str, set[tuple[Any, ...]]]:
    theirs = await rows_naming(db, user_id)
    mine = await rows_naming(db, besides)
    return {t: {_key(t, r) for r in rows if r in mine.get(t, [])} for t, rows in theirs.items()}


def test_every_table_holding_a_user_id_belongs_to_a_privacy_provider() -> None:
    declared = {table for p in load_providers() for table in p.tables}
    holding = {table.name for table, _column in user_columns()}
    assert holding, "no user columns found: the scan is broken"
    assert holding <= declared, f"tables no module exports or forgets: {sorted(holding - declared)}"
    assert [p.name for p in load_providers()][-1] == "identity"  # the rows others reference go last


async def test_the_seeded_world_names_ann_in_every_module(world: World) -> None:
    before = await rows_naming(world.db, ANN)
    for table in ("users", "guild_members", "leveling_levels", "leveling_user_quests", "leveling_quests",
                  "leveling_user_achievements", "leveling_cards", "gacha_players", "gacha_user_esprits",
                  "gacha_auction_listings", "gacha_ledger", "scheduler_jobs",
                  *(t for t in ("leveling_role_grants", "characters", "character_speech")
                    if t in Base.metadata.tables)):
        assert before.get(table), table
    await assert_ledger_reconciles(world.db)


async def test_forget_leaves_no_row_naming_the_user_and_keeps_the_others(world: World) -> None:
    db = world.db
    shared = await shared_keys(db, BOB, ANN)
    assert shared["gacha_ledger"]
    assert shared["gacha_auction_listings"]
    bob_before = await snapshot(db, BOB, besides=ANN, shared=shared)
    assert bob_before["gacha_ledger"]
    assert bob_before["leveling_levels"]
    assert bob_before["scheduler_jobs"]

    result = await PrivacyService(db).forget_user(ANN)

    assert await rows_naming(db, ANN) == {}
    assert await snapshot(db, BOB, besides=ANN, shared=shared) == bob_before
    await assert_ledger_reconciles(db)

    reports = {r.module: r for r in result.reports}
    assert reports["identity"].deleted == {"users": 1, "guild_members": 2}
    grants = {"leveling_role_grants": 1} if "leveling_role_grants" in Base.metadata.tables else {}
    assert reports["leveling"].deleted == {"leveling_levels": 1, "leveling_user_quests": 1,
                                           "leveling_user_achievements": 1, "leveling_cards": 1, **grants}
    assert reports["leveling"].anonymised == {"leveling_quests": 1}
    gacha = reports["gacha"]
    assert gacha.deleted["gacha_players"] == 2
    assert gacha.deleted["gacha_user_esprits"] == 12 + 1 - 1  # 10 pulls + 2 starters + bought - sold
    assert gacha.anonymised["gacha_ledger"] > 0
    assert reports["scheduler"].deleted == {"scheduler_jobs": 1}
    assert "1 open auction listing(s) withdrawn" in gacha.notes
    assert result.total_deleted == sum(r.total_deleted for r in result.reports)
    assert any(line.startswith("gacha: removed") for line in result.summary_lines())


async def test_the_ledger_keeps_the_lines_anonymised_and_closes_the_accounts(world: World) -> None:
    db = world.db
    async with db.session(read_only=True) as s:
        ann_lines = (await s.execute(select(LedgerEntry.id).where(LedgerEntry.user_id == ANN))).scalars().all()
        ann_wallet = (await s.execute(select(Player.faylen).where(Player.guild_id == GUILD,
                                                                  Player.user_id == ANN))).scalar_one()
    assert ann_wallet > 0

    await PrivacyService(db).forget_user(ANN)

    async with db.session(read_only=True) as s:
        kept = (await s.execute(select(LedgerEntry).where(LedgerEntry.id.in_(ann_lines)))).scalars().all()
        closing = (await s.execute(select(LedgerEntry).where(LedgerEntry.operation == "forget",
                                                             LedgerEntry.guild_id == GUILD,
                                                             LedgerEntry.currency == "faylen"))).scalars().all()
        grant = (await s.execute(select(LedgerEntry).where(LedgerEntry.user_id == BOB,
                                                           LedgerEntry.operation == "grant",
                                                           LedgerEntry.currency == "gems"))).scalar_one()
        # Bob's purchase from Ann still records what he paid; Ann's side is anonymous.
        sale = (await s.execute(select(LedgerEntry).where(LedgerEntry.operation == "auction_buy",
                                                          LedgerEntry.user_esprit_id == world.bob_bought_copy)
                                .order_by(LedgerEntry.line))).scalars().all()
    assert len(kept) == len(ann_lines)
    assert {line.user_id for line in kept} == {ANONYMOUS_USER_ID}
    assert [(c.amount, c.balance_after, c.user_id) for c in closing] == [(-ann_wallet, 0, ANONYMOUS_USER_ID)]
    assert grant.reason == "by a forgotten user: thanks for the trade"
    assert grant.amount == 5
    assert [(line.user_id, line.amount) for line in sale] == [(ANONYMOUS_USER_ID, -1), (BOB, 1)]


async def test_forget_withdraws_the_open_listing_and_keeps_what_others_bought(world: World) -> None:
    db = world.db
    await PrivacyService(db).forget_user(ANN)
    async with db.session(read_only=True) as s:
        listings = {r.id: r for r in (await s.execute(select(AuctionListing))).scalars()}
        bob_copy = await s.get(UserEsprit, world.bob_bought_copy)
    assert world.open_listing not in listings
    assert world.sold_listing not in listings  # Ann sold it: it named her as the seller
    assert world.bought_listing not in listings  # its copy was Ann's, and is gone with her
    assert (await world.gacha.browse(GUILD)).total == 0
    assert bob_copy is not None
    assert bob_copy.owner_id == BOB
    assert not bob_copy.in_escrow
    assert (await world.gacha.balance(GUILD, BOB)).balances["gems"] == 15  # starter 10 + Ann's 5


async def test_forgetting_twice_changes_nothing_more(world: World) -> None:
    service = PrivacyService(world.db)
    await service.forget_user(ANN)
    async with world.db.session(read_only=True) as s:
        lines = len((await s.execute(select(LedgerEntry.id))).all())
    again = await service.forget_user(ANN)
    assert again.total_deleted == 0
    assert again.summary_lines() == []
    async with world.db.session(read_only=True) as s:
        assert len((await s.execute(select(LedgerEntry.id))).all()) == lines
    await assert_ledger_reconciles(world.db)


async def test_export_holds_every_module_section_with_the_seeded_values(world: World) -> None:
    document = await PrivacyService(world.db).export_user(ANN)
    assert json.loads(json.dumps(document)) == document  # plain JSON
    assert document["user_id"] == ANN
    assert document["generated_at"].endswith("+00:00")
    assert document["modules"] == [p.name for p in load_providers()]
    assert {"gacha", "leveling", "scheduler"} <= set(document["modules"])
    assert document["modules"][-1] == "identity"
    data = document["data"]

    identity = data["identity"]
    assert identity["user"]["custom_name"] == "Annie"
    assert identity["user"]["first_seen_at"].endswith("+00:00")
    assert sorted(m["nickname"] for m in identity["memberships"]) == ["ann-elsewhere", "ann-nick"]

    leveling = data["leveling"]
    assert [(lv["guild_id"], lv["xp"], lv["total_messages"]) for lv in leveling["levels"]] == [(GUILD, 1234, 40)]
    assert leveling["quests"][0]["quest_name"] == "Chatterbox"
    assert leveling["achievements"][0]["achievement_name"] == "First Words"
    assert leveling["cards"][0]["primary_color"] == "#123456"
    assert leveling["quests_created"] == [{"quest_id": world.quest_by_ann, "guild_id": GUILD, "name": "Chatterbox"}]

    gacha = data["gacha"]
    assert sorted(p["guild_id"] for p in gacha["players"]) == sorted([GUILD, OTHER_GUILD])
    main = next(p for p in gacha["players"] if p["guild_id"] == GUILD)
    assert main["faylen"] == (await world.gacha.balance(GUILD, ANN)).balances["faylen"]
    assert len(gacha["esprits"]) == 12
    assert all(e["name"] for e in gacha["esprits"])
    roles = {r["id"]: r["role"] for r in gacha["auction_listings"]}
    assert roles == {world.open_listing: "seller", world.sold_listing: "seller", world.bought_listing: "buyer"}
    granted = [line for line in gacha["ledger"] if line["reason"] == f"by {ANN}: thanks for the trade"]
    assert [line["user_id"] for line in granted] == [BOB, BOB]
    assert all("balance_after" not in line and "result" not in line for line in granted)  # Bob's balance is his
    assert any(line["balance_after"] is not None for line in gacha["ledger"] if line["user_id"] == ANN)
    assert all(line["user_id"] == ANN or line["reason"].startswith(f"by {ANN}:") for line in gacha["ledger"])

    assert [j["payload"] for j in data["scheduler"]["jobs"]] == [{"user_id": ANN, "text": "birthday"}]

    bob = (await PrivacyService(world.db).export_user(BOB))["data"]
    assert [lv["xp"] for lv in bob["leveling"]["levels"]] == [777]
    assert [j["payload"]["text"] for j in bob["scheduler"]["jobs"]] == ["raid"]


async def test_export_file_is_json_and_an_unknown_user_has_empty_sections(world: World) -> None:
    service = PrivacyService(world.db)
    info = await service.export_file(ANN)
    assert info.filename.startswith(f"guildkeep-data-{ANN}-")
    assert info.filename.endswith(".json")
    assert json.loads(info.data)["data"]["gacha"]["players"]
    nobody = await service.export_user(123)
    assert nobody["data"]["identity"] == {"user": None, "memberships": []}
    assert nobody["data"]["gacha"]["players"] == []


async def test_a_bad_user_id_is_refused(world: World) -> None:
    service = PrivacyService(world.db)
    for bad in (0, -5, 2**63):
        with pytest.raises(ValidationError):
            await service.forget_user(bad)
    assert (await rows_naming(world.db, ANN))["users"]


def test_names_user_reads_user_id_and_user_ids() -> None:
    assert names_user({"user_id": 5}, 5)
    assert names_user({"user_id": "5"}, 5)
    assert names_user({"user_ids": [1, "5"]}, 5)
    assert not names_user({"user_id": 55}, 5)
    assert not names_user({"user_id": True}, 1)
    assert not names_user([5], 5)
    assert not names_user({"other": 5}, 5)


@pytest.mark.parametrize("forget_first", [True, False])
async def test_a_purchase_racing_the_forget_either_completes_or_is_refused_and_money_adds_up(
        world: World, forget_first: bool) -> None:
    db = world.db
    async with db.session(read_only=True) as s:
        listed_copy = (await s.execute(select(AuctionListing.user_esprit_id)
                                       .where(AuctionListing.id == world.open_listing))).scalar_one()
    bob_before = (await world.gacha.balance(GUILD, BOB)).balances["faylen"]
    racers = [PrivacyService(db).forget_user(ANN), world.gacha.buy(GUILD, BOB, world.open_listing)]
    outcomes = await asyncio.gather(*(racers if forget_first else racers[::-1]), return_exceptions=True)
    forgot, bought = outcomes if forget_first else outcomes[::-1]
    assert not isinstance(forgot, BaseException), forgot
    # A refusal is a player-readable error. (A purchase that committed just before the forget may also
    # answer "no listing" when it reads the listing back, after the forget removed it.)
    assert not isinstance(bought, BaseException) or isinstance(bought, DomainError), bought
    bob_after = (await world.gacha.balance(GUILD, BOB)).balances["faylen"]
    async with db.session(read_only=True) as s:
        owner = (await s.execute(select(UserEsprit.owner_id).where(UserEsprit.id == listed_copy))).scalar_one_or_none()
    if owner == BOB:
        assert bob_after == bob_before - 50  # bought first: Bob paid, Ann's credit was closed with her
    else:
        assert owner is None  # withdrawn first: the Esprit went with Ann, and Bob paid nothing
        assert bob_after == bob_before
    assert await rows_naming(db, ANN) == {}
    await assert_ledger_reconciles(db)


class _Broken:
    name = "broken"
    tables = ()
    order = 500

    async def export_user(self, _session: Any, _user_id: int) -> dict[str, Any]:
        return {}

    async def forget_user(self, _session: Any, _user_id: int) -> Any:
        raise RuntimeError("disk on fire")


async def test_a_forget_that_fails_half_way_changes_nothing(world: World) -> None:
    before = await rows_naming(world.db, ANN)
    providers = sorted([*load_providers(), _Broken()], key=lambda p: p.order)
    assert {"gacha", "leveling"} <= {p.name for p in providers if p.order < _Broken.order}  # ran before it
    with pytest.raises(RuntimeError, match="disk on fire"):
        await PrivacyService(world.db, providers).forget_user(ANN)
    assert await rows_naming(world.db, ANN) == before


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.deferred = False

    def is_done(self) -> bool:
        return self.deferred

    async def defer(self, **kwargs: Any) -> None:
        self.deferred = True
        self.calls.append(("defer", kwargs))

    async def send(self, content: str, **kwargs: Any) -> None:
        self.calls.append((content, kwargs))


async def test_export_invoked_in_a_dm_answers_with_the_file_there(world: World) -> None:
    from types import SimpleNamespace

    from guildkeep.discord.cogs.privacy import Privacy

    def refuse_dm(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("in a DM the file is the reply itself")

    recorder = _Recorder()
    interaction = SimpleNamespace(user=SimpleNamespace(id=ANN, send=refuse_dm), guild_id=None,
                                  response=recorder, followup=recorder)
    cog = Privacy(SimpleNamespace(db=world.db))  # type: ignore[arg-type]
    await Privacy.export.callback(cog, interaction)  # type: ignore[arg-type]
    (_defer, defer_kwargs), (text, kwargs) = recorder.calls
    assert defer_kwargs["ephemeral"] is True
    assert "is in this file" in text
    assert json.loads(kwargs["file"].fp.read())["data"]["identity"]["user"]["custom_name"] == "Annie"
