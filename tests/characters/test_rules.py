"""The pure rules: names, avatars, speech text and mention policy."""

from __future__ import annotations

import pytest

from guildkeep.characters import rules
from guildkeep.characters.errors import AvatarError, CharacterNameError, DescriptionError, SpeechTextError


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Gandalf", "Gandalf"),
        ("  Gandalf the   Grey \t", "Gandalf the Grey"),
        ("X", "X"),
        ("x" * 80, "x" * 80),
        ("Élodie 🐉", "Élodie 🐉"),
        ("👨\u200d👩\u200d👧 Family", "👨\u200d👩\u200d👧 Family"),  # emoji joined with ZWJ stay allowed
        ("Everyone's Friend", "Everyone's Friend"),  # only the exact reserved names are refused
        ("Over here", "Over here"),
    ],
)
def test_good_names_are_trimmed_and_kept(raw: str, clean: str) -> None:
    assert rules.clean_name(raw) == clean


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "can't be empty"),
        ("   ", "can't be empty"),
        ("\u200d", "can't be empty"),
        ("x" * 81, "at most 80 characters (this one has 81)"),
        ("Clyde", '"clyde"'),
        ("the CLYDESDALE", '"clyde"'),
        ("Discord Mod", '"discord"'),
        ("mydiscordbot", '"discord"'),
        ("everyone", "reserves"),
        ("  HERE ", "reserves"),
        ("System   Message", "reserves"),
        ("Zero\u200bWidth", "invisible"),
        ("Right\u202eto left", "invisible"),
        ("two\nlines", "one line"),
        ("bell\x07", "control"),
    ],
)
def test_bad_names_are_refused_with_the_reason(raw: str, says: str) -> None:
    with pytest.raises(CharacterNameError) as caught:
        rules.clean_name(raw)
    assert says in caught.value.message


def test_name_key_ignores_letter_case_and_width() -> None:
    assert rules.name_key("Gandalf") == rules.name_key("GANDALF") == rules.name_key("ｇａｎｄａｌｆ")
    assert rules.name_key("Straße") == rules.name_key("STRASSE")


@pytest.mark.parametrize("url", ["https://example.com/a.png", "http://cdn.example.org/x?y=1",
                                 "https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&hm=3"])
def test_http_avatar_links_are_accepted(url: str) -> None:
    assert rules.clean_avatar_url(f" {url} ") == url


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "javascript:alert(1)", "example.com/a.png",
                                 "https://", "data:image/png;base64,AAAA", "https://exa mple.com/a.png",
                                 "https://example.com/" + "a" * 2048])
def test_other_avatar_links_are_refused(url: str) -> None:
    with pytest.raises(AvatarError):
        rules.clean_avatar_url(url)


def test_an_empty_avatar_link_means_none() -> None:
    assert rules.clean_avatar_url("  ") is None
    assert rules.clean_avatar_url(None) is None


def test_avatar_uploads_must_be_images_of_at_most_10_mib() -> None:
    rules.check_avatar_upload("me.png", "image/png", 1000)
    rules.check_avatar_upload("me.webp", None, 1000)
    with pytest.raises(AvatarError, match="must be an image"):
        rules.check_avatar_upload("notes.txt", "text/plain", 10)
    with pytest.raises(AvatarError, match="10 MiB"):
        rules.check_avatar_upload("big.png", "image/png", 10 * 1024 * 1024 + 1)


def test_descriptions_and_speech_have_discord_sized_limits() -> None:
    assert rules.clean_description(None) == ""
    assert rules.clean_description(" x ") == "x"
    with pytest.raises(DescriptionError):
        rules.clean_description("x" * 2001)
    assert rules.clean_speech(" hi ") == "hi"
    with pytest.raises(SpeechTextError, match="empty"):
        rules.clean_speech("   ")
    with pytest.raises(SpeechTextError, match="2000"):
        rules.clean_speech("x" * 2001)


def test_mentions_follow_the_speakers_permission() -> None:
    assert rules.mention_policy(can_mention_everyone=True, mentionable_role_ids=(5,)) == rules.MentionPolicy(
        everyone=True, roles=True)
    limited = rules.mention_policy(can_mention_everyone=False, mentionable_role_ids=(5, 7))
    assert limited == rules.MentionPolicy(everyone=False, roles=(5, 7), users=True)
    many = rules.mention_policy(can_mention_everyone=False, mentionable_role_ids=tuple(range(150)))
    assert isinstance(many.roles, tuple)
    assert len(many.roles) == 100
