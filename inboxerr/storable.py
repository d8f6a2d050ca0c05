"""Text PostgreSQL cannot store: a NUL character (refused in text and in jsonb) and a lone
surrogate (which cannot be encoded as UTF-8 for the connection). Values that come from files and
records the service reads itself (imports, the background upload, the import command's
arguments) are checked here, where no request parser stood in front of them."""

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def unstorable_reason(text: str) -> str:
    """What in `text` cannot be stored ("a NUL character", "a lone surrogate"), or ''."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return ""
    return "a NUL character" if found.group() == "\x00" else "a lone surrogate (invalid Unicode)"


def storable(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD: for keeping a refused value
    in a report (the row-error table, an error message) where it must be stored itself."""
    return _UNSTORABLE.sub(REPLACEMENT, text)
