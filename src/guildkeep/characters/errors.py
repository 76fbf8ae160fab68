"""The characters module's errors. Each carries the text the player reads."""

from __future__ import annotations

from guildkeep.errors import ConflictError, DuplicateError, NotFoundError, PermissionDeniedError, ValidationError


class CharacterNameError(ValidationError):
    default_message = "That name can't be used for a character."


class AvatarError(ValidationError):
    default_message = "That avatar can't be used."


class DescriptionError(ValidationError):
    default_message = "That description can't be used."


class SpeechTextError(ValidationError):
    default_message = "That text can't be posted."


class CharacterNotFoundError(NotFoundError):
    default_message = "I can't find that character. Pick one from the list as you type."


class DuplicateCharacterError(DuplicateError):
    default_message = "You already have a character with that name."


class NotCharacterOwnerError(PermissionDeniedError):
    default_message = "Only the character's creator can do that."


class CharacterHiddenError(PermissionDeniedError):
    default_message = "That character is hidden on this server. Unhide it with /persona server."


class TooManyCharactersError(ValidationError):
    default_message = "You have reached the limit of characters. Delete one to make room."


class SpeechNotFoundError(NotFoundError):
    default_message = (
        "That message was not posted as a character here (or it was deleted). "
        "Copy the message id from a character's message in this server."
    )


class NotSpeakerError(PermissionDeniedError):
    default_message = "Only the person who posted that message can change or delete it."


class CharacterInUseError(ConflictError):
    default_message = "That character is in use and can't be deleted now."
