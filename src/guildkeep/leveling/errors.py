"""Leveling's errors; each message is written for the person who used the command or the dashboard.

They subclass the shared family in `guildkeep.errors`, so the Discord error handler and the web dashboard show
them as they are, and callers that catch `ValidationError` or `NotFoundError` keep working.
"""

from __future__ import annotations

from guildkeep.errors import DomainError, NotFoundError, ValidationError


class LevelingError(DomainError):
    default_message = "Leveling could not do that."


class LevelingValidationError(ValidationError, LevelingError):
    default_message = "That input is not valid."


class SettingError(LevelingValidationError):
    """A server setting that is unknown, out of its bounds or not of its kind."""

    default_message = "That setting is not valid."


class NoTargetError(LevelingValidationError):
    default_message = "Pick a channel or a role."


class OneTargetError(LevelingValidationError):
    default_message = "Pick exactly one role or channel."


class QuestNotFoundError(NotFoundError, LevelingError):
    default_message = "There is no quest with that id here."


class NotALevelRoleError(NotFoundError, LevelingError):
    default_message = "That role is not a level role."


class CounterError(LevelingValidationError):
    default_message = "Counters only go up."
