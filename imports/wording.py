"""The words the console uses for how an import reads its file: encodings, delimiters and where a
column goes. One place, so the wizard's preview and a job's page say the same thing."""

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp1252": "Windows-1252"}


def delimiter_name(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


def encoding_name(encoding: str) -> str:
    return ENCODING_NAMES.get(encoding, encoding)


def target_label(target: str) -> str:
    """"standard:first_name" -> "standard field: first_name", "ignore" -> "not imported"."""
    if target == "ignore":
        return "not imported"
    kind, _, name = target.partition(":")
    if kind == "standard" and name:
        return f"standard field: {name}"
    if kind == "custom" and name:
        return f"custom field: {name}"
    return target
