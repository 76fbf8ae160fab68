"""The gacha game's errors; each message is written for the player who used the command.

Each subclasses the `guildkeep.errors` class of its kind (not found, duplicate, cannot afford, ...), so a
caller may catch either the precise error or its family.
"""

from __future__ import annotations

from datetime import datetime

from guildkeep.errors import (
    DomainError,
    DuplicateError,
    InsufficientFundsError,
    NotFoundError,
    ValidationError,
)


class NotStartedError(NotFoundError):
    """The player has no wallet in this server yet."""

    default_message = "You have not started playing yet: use /start first."


class MemberNotStartedError(NotFoundError):
    """An administrator acts on a member who has no wallet in this server."""

    default_message = "That member has not started playing yet."


class AlreadyStartedError(DuplicateError):
    """``/start`` a second time."""

    default_message = "You have already started playing. Try /balance or /summon."


class DailyNotReadyError(DomainError):
    """The daily reward was claimed less than a cooldown ago; ``next_at`` is when the next one opens."""

    def __init__(self, next_at: datetime) -> None:
        """The error, with its message for the player."""
        super().__init__(
            f"You have already claimed your daily reward. The next one is ready at {next_at:%Y-%m-%d %H:%M} UTC."
        )
        self.next_at = next_at


class CannotAffordError(InsufficientFundsError):
    """A cost above the player's balance; both amounts are given as the player reads them."""

    def __init__(self, cost: str, have: str) -> None:
        """The error, with its message for the player."""
        super().__init__(f"That costs {cost}, but you only have {have}.")


class SummonCountError(ValidationError):
    """A summon of a count other than 1 or the multi-summon's."""

    def __init__(self, multi_count: int) -> None:
        """The error, with its message for the player."""
        super().__init__(f"You can summon 1 or {multi_count} at a time.")


class UnknownCurrencyError(ValidationError):
    """A currency typed by a player that the game does not use (here)."""

    def __init__(self, typed: str, choices: str) -> None:
        """The error, with its message for the player."""
        super().__init__(f"Unknown currency {typed}: choose one of {choices}.")


class UnknownRarityError(ValidationError):
    """A rarity typed by a player that is not a configured tier."""

    def __init__(self, typed: str, choices: str) -> None:
        """The error, with its message for the player."""
        super().__init__(f"Unknown rarity {typed}: choose one of {choices}.")


class NotOwnedError(NotFoundError):
    """An Esprit number the player does not own (in this server)."""

    def __init__(self, copy_id: int) -> None:
        """The error, with its message for the player."""
        super().__init__(f"You do not own Esprit #{copy_id}.")
        self.copy_id = copy_id


class NoActiveEspritError(NotFoundError):
    """``/esprit show`` without an Esprit and without an active one."""

    default_message = "You have no active Esprit: pick one with /esprit set-active."


class InEscrowError(ValidationError):
    """The Esprit is held at auction: it cannot be made active or listed again."""

    default_message = "That Esprit is listed at auction; cancel the listing to use it."


class ActiveEspritNotForSaleError(ValidationError):
    """The player's active Esprit cannot be listed."""

    default_message = "That is your active Esprit; pick another active one before selling it."


class ListingNotFoundError(NotFoundError):
    """No listing of that number in this server."""

    def __init__(self, listing_id: int) -> None:
        """The error, with its message for the player."""
        super().__init__(f"There is no listing #{listing_id} in this server.")
        self.listing_id = listing_id


class ListingWithdrawnError(NotFoundError):
    """The listing was cancelled by its seller before the purchase."""

    default_message = "That listing was withdrawn by its seller. Nothing was charged."


class AlreadySoldError(DomainError):
    """Another buyer won the listing first (nothing was charged), or the seller tries to withdraw a sold one."""

    default_message = "Too late: that listing has already been sold. Nothing was charged."
