"""The story module's errors. Each carries the text the player reads."""

from __future__ import annotations

from guildkeep.errors import (
    ConflictError,
    DomainError,
    DuplicateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


class StoryInputError(ValidationError):
    default_message = "That can't be used in a story."


class WorldNotFoundError(NotFoundError):
    default_message = "There is no such world on this server. Pick one from the list as you type (see /world list)."


class DuplicateWorldError(DuplicateError):
    default_message = "This server already has a world with that name."


class LocationNotFoundError(NotFoundError):
    default_message = "That world has no such location. Pick one from the list as you type."


class EventNotFoundError(NotFoundError):
    default_message = "That location has no such event. Pick one from the list as you type."


class WorldInUseError(ConflictError):
    default_message = "A story in this server is still using that world; end it first with /story end."


class NoStoryError(NotFoundError):
    default_message = "There is no story in this channel. Start one with /story start."


class StoryRunningError(DuplicateError):
    default_message = "A story is already running in this channel. End it first with /story end."


class StoryStateError(ConflictError):
    default_message = "The story changed in the meantime; please try again."


class NotStoryManagerError(PermissionDeniedError):
    default_message = "Only the person who started this story (or someone with Manage Server) can do that."


class NotWorldManagerError(PermissionDeniedError):
    default_message = "Only the world's creator (or someone with Manage Server) can change it."


class CharacterInUseError(ConflictError):
    default_message = "That character is in a running story; end the story (or wait for it to end) first."


class StoryCharacterError(DomainError):
    default_message = "That character can't be used in this story."
