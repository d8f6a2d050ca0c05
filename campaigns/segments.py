"""How many SMS segments a text costs, and in which encoding it goes out.

A text made only of the GSM 03.38 default alphabet (3GPP TS 23.038) goes as GSM-7: 160 septets
in one message, 153 per part once it must be split (the user data header takes the rest). The
extension-table characters (`€ [ ] { } \\ ^ ~ |` and form feed) are sent as ESC + char, so they
count two septets, and the pair is never split across two parts. Any other character turns the
whole text into UCS-2: 70 UTF-16 code units in one message, 67 per part; characters outside the
Basic Multilingual Plane (most emoji) are a surrogate pair, two units that stay in one part.
"""

import re
from enum import StrEnum
from typing import NamedTuple

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"

# Matching the whole text against one character class runs in C: the dispatcher counts every
# message it sends, so this stays off the per-character Python path.
_GSM7_TEXT = re.compile("[" + re.escape(GSM7_BASIC + GSM7_EXTENSION) + "]*")



class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


SINGLE_LIMIT = {Encoding.GSM7: 160, Encoding.UCS2: 70}
PART_LIMIT = {Encoding.GSM7: 153, Encoding.UCS2: 67}


class SegmentCount(NamedTuple):
    encoding: Encoding
    segments: int


def sms_segments(text: str) -> SegmentCount:
    """The encoding a text is sent in and how many segments it takes (an empty text is one)."""
    if _GSM7_TEXT.fullmatch(text):
        widths = [2 if char in GSM7_EXTENSION else 1 for char in text] if _has_extension(text) else None
        units = len(text) if widths is None else sum(widths)
        return SegmentCount(Encoding.GSM7, _parts(units, widths, Encoding.GSM7))
    encoded = text.encode("utf-16-le")
    units = len(encoded) // 2
    widths = [2 if ord(char) > 0xFFFF else 1 for char in text] if units != len(text) else None
    return SegmentCount(Encoding.UCS2, _parts(units, widths, Encoding.UCS2))


def _has_extension(text: str) -> bool:
    return any(char in text for char in GSM7_EXTENSION)


def _parts(units: int, widths: list[int] | None, encoding: Encoding) -> int:
    """Parts needed for `units` (septets or UTF-16 code units). `widths` lists the units of each
    character when some take two: a two-unit character never straddles two parts."""
    if units <= SINGLE_LIMIT[encoding]:
        return 1
    per_part = PART_LIMIT[encoding]
    if widths is None:
        return -(-units // per_part)
    parts, used = 1, 0
    for width in widths:
        if used + width > per_part:
            parts, used = parts + 1, 0
        used += width
    return parts
