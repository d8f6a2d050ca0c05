"""Spreadsheet formula injection (OWASP "CSV injection"): every CSV Inboxerr writes goes through
safe_cell, and every django-import-export resource through SafeExportMixin."""

import csv
import re
from collections.abc import Iterator

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# A plain signed number (an E.164 phone, a negative amount) is data, not a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def safe_cell(value: object) -> object:
    """Neutralise spreadsheet formulas (OWASP CSV injection): prefix a quote to text cells that
    a spreadsheet would evaluate. Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeExportMixin:
    """For django-import-export resources: each exported cell through safe_cell, the header
    row's included (a column name may come from data, as a list's field keys do)."""

    def export_field(self, field, instance, **kwargs):
        return safe_cell(super().export_field(field, instance, **kwargs))

    def get_export_headers(self, *args, **kwargs):
        return [safe_cell(header) for header in super().get_export_headers(*args, **kwargs)]


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer in a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterator[list], *, bom: bool = False) -> Iterator[str]:
    """The rows as CSV lines. `bom` starts the text with a UTF-8 byte order mark, for files meant
    to be opened in Excel, which otherwise reads UTF-8 as Windows-1252 ("TÃ©lÃ©phone")."""
    if bom:
        yield "\ufeff"
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)
