"""The privacy cog's pure helpers: the export attachment and the forget summary."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from guildkeep.db import utcnow
from guildkeep.discord.cogs.privacy import DISCORD_FILE_MAX, FILE_LIMIT, export_attachment, forget_message
from guildkeep.errors import ValidationError
from guildkeep.privacy import ExportInfo, ForgetReport, ForgetResult


def test_a_small_export_is_sent_as_json_and_a_big_one_zipped() -> None:
    small = ExportInfo(1, {}, b'{"a": 1}', "guildkeep-data-1-2026-12-02.json")
    file = export_attachment(small)
    assert file.filename == small.filename
    assert file.fp.read() == small.data

    data = b'{"x": "' + b"y" * FILE_LIMIT + b'"}'
    big = ExportInfo(1, {}, data, "guildkeep-data-1-2026-12-02.json")
    file = export_attachment(big)
    assert file.filename == "guildkeep-data-1-2026-12-02.zip"
    packed = file.fp.read()
    assert len(packed) < FILE_LIMIT
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert archive.read(big.filename) == data


def test_an_export_too_big_even_zipped_is_refused_with_a_pointer_to_the_operator() -> None:
    noise = random.Random(1).randbytes(DISCORD_FILE_MAX + 1)  # does not compress
    with pytest.raises(ValidationError, match="guildkeep privacy export"):
        export_attachment(ExportInfo(1, {}, noise, "guildkeep-data-1-2026-12-02.json"))


def test_the_forget_summary_names_each_module_and_fits_a_message() -> None:
    nothing = ForgetResult(1, utcnow(), [ForgetReport("gacha"), ForgetReport("identity")])
    assert forget_message(nothing) == "I had nothing stored about you; nothing was removed."

    report = ForgetReport("gacha")
    report.removed("gacha_players", 2)
    report.kept_anonymised("gacha_ledger", 9)
    text = forget_message(ForgetResult(1, utcnow(), [report]))
    assert "removed 2 record(s)" in text
    assert "anonymised 9" in text
    assert "- gacha: removed 2 gacha_players; kept anonymised: 9 gacha_ledger" in text

    many = []
    for n in range(200):
        r = ForgetReport(f"module{n}")
        r.removed(f"module{n}_rows_with_a_long_table_name", n + 1)
        many.append(r)
    assert len(forget_message(ForgetResult(1, utcnow(), many))) <= 2000
