"""The scheduler's errors, each carrying the text shown to the person who asked."""

from __future__ import annotations

from guildkeep.db.errors import DomainError, NotFoundError, ValidationError


class JobNotFoundError(NotFoundError):
    default_message = "There is no such scheduled job."


class JobStateError(DomainError):
    default_message = "That job cannot be changed in its current state."


class JobValidationError(ValidationError):
    default_message = "That job is not valid."
