"""Free text checks shared by every service: control characters refused, lengths enforced, echoes kept short."""

from __future__ import annotations

import pytest

from guildkeep.errors import ValidationError
from guildkeep.text import clean_text, echo, plural, strip_control


@pytest.mark.parametrize("value", ["a\x00b", "\x07bell", "tab\there", "line\nbreak", "\ud800lone"])
def test_control_characters_are_refused_in_one_line_text(value: str) -> None:
    with pytest.raises(ValidationError, match="can't contain control characters"):
        clean_text(value, "The quest name", max_length=100)


def test_multiline_text_keeps_newlines_and_tabs_but_not_nul() -> None:
    assert clean_text(" two\n\tlines ", "The description", max_length=100, multiline=True) == "two\n\tlines"
    with pytest.raises(ValidationError, match="it has NUL"):
        clean_text("a\x00b", "The description", max_length=100, multiline=True)


def test_lengths_are_counted_after_stripping() -> None:
    assert clean_text("  ok  ", "The name", max_length=2) == "ok"
    with pytest.raises(ValidationError, match="1 to 100 characters"):
        clean_text("   ", "The quest name", max_length=100)
    with pytest.raises(ValidationError, match="at most 5 characters"):
        clean_text("toolong", "The reason", max_length=5, min_length=0)
    assert clean_text("", "The reason", max_length=5, min_length=0) == ""


def test_zero_width_and_right_to_left_text_is_kept() -> None:
    value = "a\u200bb\u202eevil"
    assert clean_text(value, "The name", max_length=100) == value


def test_non_text_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be text"):
        clean_text(5, "The name", max_length=100)


def test_echo_is_short_and_printable() -> None:
    assert echo("x" * 2500) == "x" * 79 + "…"
    assert echo("a\x00b\nc") == "abc"
    assert echo("short") == "short"


def test_strip_control_drops_only_control_characters() -> None:
    assert strip_control("na\x00me\u200b") == "name\u200b"
    assert strip_control(None) == ""


def test_parse_id_takes_only_plain_digits_within_64_bits() -> None:
    from guildkeep.text import ID_MAX, parse_id

    assert parse_id("12") == 12
    assert parse_id(" 1577645826526674948 ") == 1577645826526674948
    assert parse_id(str(ID_MAX)) == ID_MAX
    for bad in ("", "0", "-1", "①", "²", "٣", "1e3", "12a", str(ID_MAX + 1), "9" * 25):
        assert parse_id(bad) is None, bad
def test_plural_counts_with_thousands_separators() -> None:
    assert plural(1, "Esprit") == "1 Esprit"
    assert plural(1000, "player") == "1,000 players"
    assert plural(2, "copy", "copies") == "2 copies"
