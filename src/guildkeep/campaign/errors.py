"""The campaign module's errors. Each carries the text the player reads."""

from __future__ import annotations

from guildkeep.errors import ConflictError, DuplicateError, NotFoundError, PermissionDeniedError, ValidationError


class CampaignInputError(ValidationError):
    default_message = "That can't be used in a campaign."


class NoCampaignError(NotFoundError):
    default_message = "There is no campaign in this channel. A GM starts one with /campaign create."


class CampaignExistsError(DuplicateError):
    default_message = "This channel already has a campaign. See /campaign info."


class CampaignArchivedError(PermissionDeniedError):
    default_message = "This campaign is archived: it is read-only. The GM can unarchive it with /campaign archive."


class NotGmError(PermissionDeniedError):
    default_message = "Only this campaign's GM can do that."


class AlreadyPlayerError(DuplicateError):
    default_message = "You already play in this campaign."


class GmCannotJoinError(ValidationError):
    default_message = "You are this campaign's GM; the GM does not join as a player."


class NotPlayerError(PermissionDeniedError):
    default_message = "You don't play in this campaign. Join it first with /campaign join."


class AlreadyHasCharacterError(DuplicateError):
    default_message = "You already have a character in this campaign. Change it with /character edit."


class NoCharacterError(NotFoundError):
    default_message = "You have no character in this campaign yet. Make one with /character create."


class NpcNotFoundError(NotFoundError):
    default_message = "This campaign has no such NPC. Pick one from the list as you type (see /npc list)."


class DuplicateNpcError(DuplicateError):
    default_message = "This campaign already has an NPC with that name."


class CampaignChangedError(ConflictError):
    default_message = "The campaign changed at the same moment; please try again."


class SpeechNotInCampaignError(NotFoundError):
    default_message = "That message was not posted in this campaign (or it was already deleted)."
