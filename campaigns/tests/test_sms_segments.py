"""GSM-7 / UCS-2 detection and segment counts, on the edges where carriers bill differently."""

import pytest

from campaigns.segments import GSM7_BASIC, GSM7_EXTENSION, Encoding, sms_segments


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", Encoding.GSM7, 1),
        ("Hello Ann, your order A1 ships today.", Encoding.GSM7, 1),
        ("a" * 160, Encoding.GSM7, 1),
        ("a" * 161, Encoding.GSM7, 2),
        ("a" * 306, Encoding.GSM7, 2),
        ("a" * 307, Encoding.GSM7, 3),
        ("a" * 459, Encoding.GSM7, 3),
        ("a" * 460, Encoding.GSM7, 4),
        # Accented letters that are in the GSM-7 table stay GSM-7.
        ("Café à Zürich? ¿Añejo? Über Øre Ñu", Encoding.GSM7, 1),
        ("ΔΦΓΛΩΠΨΣΘΞ £$¥ §¡¿ @_", Encoding.GSM7, 1),
    ],
)
def test_gsm7_text_counts_160_then_153_per_part(text, encoding, segments):
    assert sms_segments(text) == (encoding, segments)


def test_extension_characters_count_two_septets():
    assert sms_segments("€" * 80) == (Encoding.GSM7, 1)  # 160 septets
    assert sms_segments("€" * 81) == (Encoding.GSM7, 2)  # 162 septets
    assert sms_segments("a" * 159 + "€") == (Encoding.GSM7, 2)  # 161 septets
    assert sms_segments("a" * 158 + "[") == (Encoding.GSM7, 1)  # exactly 160
    assert sms_segments("{}[]~|^\\\f€") == (Encoding.GSM7, 1)


def test_an_escape_pair_is_never_split_across_two_parts():
    # 152 + 2 + 152 = 306 septets fits 2 x 153 on paper, but the euro's ESC would end part one
    # and the euro itself begin part two: carriers move the pair, so it takes three parts.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == (Encoding.GSM7, 3)
    assert sms_segments("a" * 151 + "€" + "a" * 153) == (Encoding.GSM7, 2)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ç", 1),  # lower-case c-cedilla is not in the GSM-7 table (only Ç is)
        ("Zoë", 1),
        ("é" * 159 + "ë", 3),  # one non-GSM character turns all 160 into UCS-2
        ("Привет" * 11 + "Пр", 1),  # 68 units
        ("Ж" * 70, 1),
        ("Ж" * 71, 2),
        ("Ж" * 134, 2),
        ("Ж" * 135, 3),
        ("`", 1),  # the backtick is not GSM-7 either
    ],
)
def test_any_other_character_turns_the_text_into_ucs2(text, segments):
    assert sms_segments(text) == (Encoding.UCS2, segments)


def test_emoji_count_two_utf16_units_and_stay_whole():
    assert sms_segments("😀") == (Encoding.UCS2, 1)
    assert sms_segments("😀" * 35) == (Encoding.UCS2, 1)  # 70 units
    assert sms_segments("😀" * 36) == (Encoding.UCS2, 2)  # 72 units
    assert sms_segments("a" + "😀" * 35) == (Encoding.UCS2, 2)  # 71 units
    # 66 units then a pair: 68 > 67, so the pair opens part two (67 per part would split it).
    assert sms_segments("a" * 66 + "😀" + "a" * 66) == (Encoding.UCS2, 3)
    assert sms_segments("a" * 65 + "😀" + "a" * 67) == (Encoding.UCS2, 2)  # 65+2 | 67


def test_flags_and_joined_emoji_count_every_code_unit():
    family = "👨‍👩‍👧‍👦"  # 4 emoji joined by 3 zero-width joiners: 11 UTF-16 units
    assert len(family.encode("utf-16-le")) // 2 == 11
    assert sms_segments(family * 6) == (Encoding.UCS2, 1)  # 66
    assert sms_segments(family * 7) == (Encoding.UCS2, 2)  # 77
    assert sms_segments("🇫🇷" * 18) == (Encoding.UCS2, 2)  # 72


def test_the_whole_gsm7_table_is_gsm7_and_nothing_else_sneaks_in():
    assert len(GSM7_BASIC) == 127  # 128 code points less the escape
    assert sms_segments(GSM7_BASIC[:160]).encoding == Encoding.GSM7
    assert sms_segments(GSM7_EXTENSION).encoding == Encoding.GSM7
    for char in "\t\u00a0ÀÁÂÃÈÊËÍÎÏÒÓÔÕÚÛáâãêíîóôõúûçšž’“”…–":
        assert sms_segments(char).encoding == Encoding.UCS2, repr(char)
