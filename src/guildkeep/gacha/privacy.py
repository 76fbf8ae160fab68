"""The gacha game's part of an export and a forget.

The ledger is append-only and must still add up after a player is forgotten, so forgetting:

1. withdraws the player's open auction listings (their copies leave escrow; nobody paid for them yet:
   a purchase is one transaction, so there is never money held for a listing);
2. closes the player's accounts in the ledger: under one fresh idempotency key per server, a line per
   currency takes the balance to zero and a line per owned copy takes it away;
3. deletes the listings they sold or whose copy they own, their copies and their player rows, and
   clears them as the buyer of listings they bought and sold on;
4. keeps every ledger line that named them, with the user id replaced by `ANONYMOUS_USER_ID` (0, never
   a Discord id) and "by <id>:" in the reason of their administrator grants replaced.

Afterwards every remaining player's ledger lines still sum to their balances and copies, and the
anonymous account sums to zero in every currency and copy.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import utcnow
from guildkeep.gacha.config import WALLET
from guildkeep.gacha.models import (
    LISTING_CANCELLED,
    LISTING_OPEN,
    AuctionListing,
    Esprit,
    LedgerEntry,
    Player,
    UserEsprit,
)
from guildkeep.privacy.registry import ForgetReport, row_dict

ANONYMOUS_USER_ID = 0
FORGET_OPERATION = "forget"
FORGET_REASON = "player data erased at their request"
FORGOTTEN_ADMIN = "by a forgotten user:"


def _admin_prefix(user_id: int) -> str:
    """How the gacha service writes an administrator into a grant's reason."""
    return f"by {user_id}:"


class GachaPrivacy:
    """Players (wallets, pity, streaks), owned Esprits, auction listings and ledger lines."""

    name = "gacha"
    tables = ("gacha_players", "gacha_user_esprits", "gacha_auction_listings", "gacha_ledger")
    order = 100

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """Per-server players, copies (with the Esprit's name), listings sold or bought, ledger lines."""
        players = (
            await session.execute(select(Player).where(Player.user_id == user_id).order_by(Player.guild_id))
        ).scalars().all()
        copies = (
            await session.execute(
                select(UserEsprit, Esprit.name, Esprit.rarity)
                .join(Esprit, Esprit.id == UserEsprit.esprit_id)
                .where(UserEsprit.owner_id == user_id)
                .order_by(UserEsprit.id)
            )
        ).all()
        listings = (
            await session.execute(
                select(AuctionListing)
                .where(or_(AuctionListing.seller_id == user_id, AuctionListing.buyer_id == user_id))
                .order_by(AuctionListing.id)
            )
        ).scalars().all()
        ledger = (
            await session.execute(
                select(LedgerEntry)
                .where(or_(LedgerEntry.user_id == user_id,
                           LedgerEntry.reason.startswith(_admin_prefix(user_id), autoescape=True)))
                .order_by(LedgerEntry.id)
            )
        ).scalars().all()
        return {
            "players": [row_dict(p) for p in players],
            "esprits": [{**row_dict(c), "name": name, "rarity": rarity} for c, name, rarity in copies],
            "auction_listings": [
                {**row_dict(r), "role": "seller" if r.seller_id == user_id else "buyer"} for r in listings
            ],
            # Grants they made as an administrator are on the receiver's account: the receiver's balance
            # (``balance_after``, and line 0's ``result``) is the receiver's data, not theirs.
            "ledger": [row_dict(line, exclude=() if line.user_id == user_id else ("balance_after", "result"))
                       for line in ledger],
        }

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Close the player's accounts in the ledger, delete what they own, anonymise the ledger."""
        report = ForgetReport(self.name)
        now = utcnow()

        # 1. Open listings are withdrawn first (the lock order of the service: listings, players, copies).
        withdrawn = (
            await session.execute(
                update(AuctionListing)
                .where(AuctionListing.seller_id == user_id, AuctionListing.status == LISTING_OPEN)
                .values(status=LISTING_CANCELLED, closed_at=now)
                .returning(AuctionListing.user_esprit_id)
            )
        ).scalars().all()
        if withdrawn:
            await session.execute(
                update(UserEsprit).where(UserEsprit.id.in_(withdrawn)).values(in_escrow=False, updated_at=now)
            )
            report.notes.append(f"{len(withdrawn)} open auction listing(s) withdrawn")

        # 2. Close the accounts: balances to zero and copies away, on the anonymous account.
        players = (
            await session.execute(
                select(Player).where(Player.user_id == user_id).order_by(Player.id).with_for_update()
            )
        ).scalars().all()
        copies = (
            await session.execute(
                select(UserEsprit.guild_id, UserEsprit.id).where(UserEsprit.owner_id == user_id)
                .order_by(UserEsprit.id).with_for_update()
            )
        ).all()
        copies_by_guild: dict[int, list[int]] = {}
        for guild_id, copy_id in copies:
            copies_by_guild.setdefault(guild_id, []).append(copy_id)
        balances = {p.guild_id: {c: getattr(p, c) for c in WALLET} for p in players}
        key = f"privacy-forget-{uuid.uuid4().hex}"
        lines: list[dict[str, Any]] = []
        for guild_id in sorted(set(balances) | set(copies_by_guild)):
            closing: list[dict[str, Any]] = [
                {"currency": currency, "amount": -amount, "balance_after": 0, "user_esprit_id": None}
                for currency, amount in balances.get(guild_id, {}).items() if amount
            ]
            closing += [
                {"currency": None, "amount": -1, "balance_after": None, "user_esprit_id": copy_id}
                for copy_id in copies_by_guild.get(guild_id, [])
            ]
            header = {"currency": None, "amount": 0, "balance_after": None, "user_esprit_id": None,
                      "result": {"lines": len(closing)}}
            for number, line in enumerate([header, *closing]):
                lines.append({"result": None, **line, "guild_id": guild_id, "user_id": ANONYMOUS_USER_ID,
                              "idempotency_key": key, "line": number, "operation": FORGET_OPERATION,
                              "reason": FORGET_REASON, "created_at": now})
        if lines:
            await session.execute(insert(LedgerEntry), lines)

        # 3. Delete what they own, and what only described their trades.
        copy_ids = [copy_id for _guild, copy_id in copies]
        listings = await session.execute(
            delete(AuctionListing).where(
                or_(AuctionListing.seller_id == user_id, AuctionListing.user_esprit_id.in_(copy_ids))
            )
        )
        report.removed("gacha_auction_listings", listings)
        bought = await session.execute(
            update(AuctionListing).where(AuctionListing.buyer_id == user_id).values(buyer_id=None)
        )
        report.kept_anonymised("gacha_auction_listings", bought)
        owned = await session.execute(delete(UserEsprit).where(UserEsprit.owner_id == user_id))
        report.removed("gacha_user_esprits", owned)
        gone = await session.execute(delete(Player).where(Player.user_id == user_id))
        report.removed("gacha_players", gone)

        # 4. The ledger keeps its lines, with the user replaced.
        prefix = _admin_prefix(user_id)
        names_admin = LedgerEntry.reason.startswith(prefix, autoescape=True)
        anonymised = await session.execute(
            update(LedgerEntry)
            .where(or_(LedgerEntry.user_id == user_id, names_admin))
            .values(
                user_id=case((LedgerEntry.user_id == user_id, ANONYMOUS_USER_ID), else_=LedgerEntry.user_id),
                reason=case((names_admin, func.replace(LedgerEntry.reason, prefix, FORGOTTEN_ADMIN)),
                            else_=LedgerEntry.reason),
            )
        )
        report.kept_anonymised("gacha_ledger", anonymised)
        if lines:
            servers = len({line["guild_id"] for line in lines})
            report.notes.append(f"accounts closed in the ledger in {servers} server(s)")
        return report


PROVIDER = GachaPrivacy()
