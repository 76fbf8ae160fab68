"""The scheduler's errors, each carrying the text shown to the person who asked."""

from __future__ import annotations

from guildkeep.errors import DomainError, NotFoundError, ValidationError


class JobNotFoundError(NotFoundError):
    """No job has that id."""

    default_message = "There is no such scheduled job."


class JobStateError(DomainError):
    """The job's status does not allow the change (e.g. retrying a job that did not fail)."""

    default_message = "That job cannot be changed in its current state."


class JobValidationError(ValidationError):
    """A schedule request with a bad kind, time, recurrence, payload or key."""

    default_message = "That job is not valid."
