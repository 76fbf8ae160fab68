"""The companion's errors; each message is written for the person who used the command."""

from __future__ import annotations

from guildkeep.errors import DomainError


class CompanionError(DomainError):
    default_message = "The companion could not do that."


class CompanionValidationError(CompanionError):
    default_message = "That input is not valid."


class FactNotFoundError(CompanionError):
    default_message = "I don't remember that fact about you (maybe it was already forgotten)."


class EventNotFoundError(CompanionError):
    default_message = "That reminder does not exist or is not yours."
