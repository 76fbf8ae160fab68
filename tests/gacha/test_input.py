"""Hostile or mistaken input on both databases: a clear message, nothing changed, nothing crashed."""

from __future__ import annotations

import pytest

from guildkeep.errors import InsufficientFundsError, NotFoundError, ValidationError
from guildkeep.gacha.service import GachaService
from tests.gacha.conftest import ADMIN, GUILD


@pytest.mark.parametrize("typed", ["banana", "mythic", "", "  ", "common\x00", "💥" * 3000])
async def test_an_unknown_rarity_is_refused_with_the_valid_ones(service: GachaService, typed: str) -> None:
    await service.start(GUILD, 1)
    for call in (service.inventory(GUILD, 1, rarity=typed), service.browse(GUILD, rarity=typed)):
        with pytest.raises(ValidationError) as info:
            await call
        message = str(info.value)
        assert message.startswith("Unknown rarity ")
        assert message.endswith("choose one of Common, Uncommon, Rare, Epic, Legendary.")
        assert len(message) < 200


async def test_rarity_and_currency_may_be_typed_by_name_in_any_case(service: GachaService) -> None:
    await service.start(GUILD, 1)
    assert (await service.inventory(GUILD, 1, rarity="COMMON")).page == 1
    assert service.resolve_rarity(" Legendary ") == "legendary"
    assert service.resolve_currency("GEMS") == "gems"
    board = await service.leaderboard(GUILD, "currency", currency="Faylen")
    assert board.items[0].value == 1000


async def test_an_unknown_currency_is_echoed_short(service: GachaService) -> None:
    await service.start(GUILD, 1)
    with pytest.raises(ValidationError) as info:
        await service.leaderboard(GUILD, "currency", currency="x" * 2500)
    message = str(info.value)
    assert message == f"Unknown currency '{'x' * 99}…': choose one of Faylen, Virelite, Gems."
    with pytest.raises(ValidationError, match=r"Unknown currency 'dollars': choose one of Faylen, Virelite, Gems\."):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="dollars", reason="r")


async def test_a_grant_reason_with_control_characters_is_refused(service: GachaService) -> None:
    await service.start(GUILD, 1)
    with pytest.raises(ValidationError, match="control characters"):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="gems", reason="bonus\x00")
    assert (await service.balance(GUILD, 1)).balances["gems"] == 10
    assert await service.reconcile(GUILD) == []


@pytest.mark.parametrize("typed", ["\x00", "%", "_", "' OR 1=1 --", "\u200b\u202e", "a" * 5000])
async def test_owned_choices_survive_any_typed_text(service: GachaService, typed: str) -> None:
    await service.start(GUILD, 1)
    choices = await service.owned_choices(GUILD, 1, typed)
    assert len(choices) <= 25
    if typed in ("%", "_"):
        assert choices == []  # matched literally, not as LIKE wildcards


async def test_grant_refusals_speak_of_the_member(service: GachaService) -> None:
    await service.start(GUILD, 1)
    with pytest.raises(InsufficientFundsError, match=r"^They only have 10 Gems, so 11 Gems cannot be taken\.$"):
        await service.grant(GUILD, ADMIN, 1, amount=-11, currency="gems", reason="r")
    with pytest.raises(NotFoundError, match=r"^That member has not started playing yet\.$"):
        await service.grant(GUILD, ADMIN, 2, amount=-11, currency="gems", reason="r")


@pytest.mark.parametrize("reason", ["", "   ", "\u200b\u200b", "\u202e \u200d"])
async def test_a_grant_needs_a_visible_reason(service: GachaService, reason: str) -> None:
    await service.start(GUILD, 1)
    with pytest.raises(ValidationError, match="Give a reason"):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="gems", reason=reason)
    assert (await service.balance(GUILD, 1)).balances["gems"] == 10
