"""The errors a person using the bot may be shown.

Every message a `DomainError` carries is written for the person who used the bot: the Discord layer shows it
as-is in an ephemeral reply. Each module's ``errors.py`` subclasses these; the data core translates driver
errors into them (`guildkeep.db.errors.translate_db_error`).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base for every error a player may be shown."""

    default_message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ValidationError(DomainError):
    default_message = "That input is not valid."


class NotFoundError(DomainError):
    default_message = "That does not exist."


class DuplicateError(DomainError):
    default_message = "That already exists."


class ForeignKeyError(DomainError):
    default_message = "That refers to something that does not exist."


class ConflictError(DomainError):
    """A concurrent change won; retrying may succeed."""

    default_message = "Someone else changed this at the same moment; please try again."


class PermissionDeniedError(DomainError):
    default_message = "You are not allowed to do that."


class InsufficientFundsError(DomainError):
    default_message = "You cannot afford that."
