"""Turning source records (CSV cells or JSON objects) into clean subscriber rows or row errors.
Runs once per row on the import hot path, so it works from a precomputed column plan."""

import json
from typing import NamedTuple

from imports.parsing import FIELD_SIZE_LIMIT, ColumnPlan, CsvRowError
from inboxerr.storable import storable
from subscribers.models import KeyField, SubscriberStatus
from subscribers.normalize import RecordError, clean_record, normalize_email, normalize_phone

MAX_ERROR_VALUE_CHARS = 1000
_STATUSES = frozenset(SubscriberStatus.values)


class CleanRow(NamedTuple):
    """A row ready for the database; a tuple so COPY can write it as it is."""

    key: str
    email: str
    phone: str
    name: str
    status: str  # "" when the source says nothing: an update then keeps the current status
    standard_json: str
    custom_json: str


ERROR, WARNING = "error", "warning"


class RowError:
    """A line of the report: an error (the row was not taken) or a warning (the row was taken
    without one secondary field, named in `column`). The row's values, quoted in the report,
    are made into their stored form only when read: a file where half the rows are bad has
    every line counted, but only the first IMPORT_MAX_STORED_ERRORS are stored."""

    __slots__ = ("row", "reason", "kind", "column", "_values", "_names", "_cells")

    def __init__(self, row: int, reason: str, values: dict | None = None, kind: str = ERROR, column: str = "",
                 *, names: list[str] | None = None, cells: list[str] | None = None):
        self.row, self.reason, self.kind, self.column = row, reason, kind, column
        self._values, self._names, self._cells = values, names or [], cells or []

    @property
    def values(self) -> dict:
        if self._values is not None:
            return self._values
        # Made anew when read (once, when the line is stored), never kept: NUL characters and
        # lone surrogates become U+FFFD, long values are cut.
        return {storable(name): storable(value[:MAX_ERROR_VALUE_CHARS]) for name, value in zip(self._names, self._cells)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowError) and (self.row, self.reason, self.kind, self.column, self.values) == (
            other.row, other.reason, other.kind, other.column, other.values)

    def __repr__(self) -> str:
        return f"RowError({self.row!r}, {self.reason!r}, kind={self.kind!r}, column={self.column!r})"


def row_error(number: int, reason: str, values: dict[str, str] | None = None, *,
              names: list[str] | None = None, cells: list[str] | None = None) -> RowError:
    """A row error that can itself be stored: the reason and the row's names and values may
    quote what the file held, NUL characters and lone surrogates included, so those become
    U+FFFD, and long values are cut. The values come as a dict or as names and cells."""
    if values is not None:
        names, cells = list(values), list(values.values())
    return RowError(number, storable(reason[:500]), names=names or [], cells=cells or [])


def row_warning(number: int, column: str, reason: str, values: dict[str, str] | None = None, *,
                names: list[str] | None = None, cells: list[str] | None = None) -> RowError:
    error = row_error(number, reason, values, names=names, cells=cells)
    error.kind, error.column = WARNING, storable(column[:200])
    return error


def error_columns(header: list[str]) -> list[str]:
    """Names for a row's values in the error report: the header, a repeated name numbered."""
    names, seen = [], {}
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


# json.dumps with arguments builds a new encoder on every call; one encoder made once writes the
# same text (a row's two field objects are encoded for every row of a file).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_string = json.encoder.encode_basestring  # a str as JSON, non-ASCII kept: what _dumps writes for one


class CsvRowCleaner:
    """Cleans CSV rows for a list keyed on `key_field`, following a ColumnPlan."""

    def __init__(self, plan: ColumnPlan, key_field: str, keep_raw: list[str] | tuple = ()):
        self.header = plan.header
        self.width = len(plan.header)
        self.key_field = key_field
        self.email_at = plan.index_of("email")
        self.phone_at = plan.index_of("phone")
        self.name_at = plan.index_of("name")
        self.status_at = plan.index_of("status")
        self.standard = [(i, t.split(":", 1)[1]) for i, t in enumerate(plan.targets) if t.startswith("standard:")]
        self.custom = [(i, t.split(":", 1)[1]) for i, t in enumerate(plan.targets) if t.startswith("custom:")]
        self.first_last = (
            next((i for i, name in self.standard if name == "first_name"), None),
            next((i for i, name in self.standard if name == "last_name"), None),
        )
        self.error_names = error_columns(plan.header)
        self.standard_json = [(i, _string(name) + ":") for i, name in self.standard]
        self.custom_json = [(i, _string(name) + ":") for i, name in self.custom]
        # Columns whose bad value the owner keeps as written, in a custom field "<field>_raw".
        self.keep_raw = {i for i, column in enumerate(plan.header) if column in set(keep_raw)}

    def missing_key_column(self) -> bool:
        return (self.email_at if self.key_field == KeyField.EMAIL else self.phone_at) is None

    def clean(self, number: int, cells: list[str], warnings: list[RowError]) -> CleanRow | RowError:
        """A clean row, or the error that keeps the row out. Only the key column (and a row that
        cannot be read) decides that; a bad secondary value is left out (or kept as written,
        where the owner chose so) and a warning for it is added to `warnings`."""
        if isinstance(cells, CsvRowError):
            return row_error(number, f"cannot be parsed: {cells.reason}", {})
        if len(cells) > self.width:
            return self._error(number, cells, f"has {len(cells)} fields but the header has {self.width}")
        if len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        # The row joined once answers both questions cheaply: no cell is longer than the whole
        # row, and a NUL (which PostgreSQL refuses in text and jsonb) is looked for in one pass.
        # Before any other check, whose reason may quote a cell. A lone surrogate cannot occur:
        # files are decoded strictly (parsing.py).
        line = "".join(cells)
        if len(line) > FIELD_SIZE_LIMIT and any(len(cell) > FIELD_SIZE_LIMIT for cell in cells):
            return self._error(number, cells, f"has a field longer than {FIELD_SIZE_LIMIT:,} characters")
        if "\x00" in line:
            column = next(i for i, cell in enumerate(cells) if "\x00" in cell)
            return self._error(number, cells, f"NUL character in column '{self.error_names[column][:100]}'")
        raw: dict[str, str] = {}
        email = phone = ""
        try:
            if self.email_at is not None:
                email = self._field(normalize_email, number, cells, self.email_at, KeyField.EMAIL, warnings, raw)
            if self.phone_at is not None:
                phone = self._field(normalize_phone, number, cells, self.phone_at, KeyField.PHONE, warnings, raw)
        except RecordError as exc:
            return self._error(number, cells, str(exc))
        key = email if self.key_field == KeyField.EMAIL else phone
        if not key:
            return self._error(number, cells, f"{self.key_field}: is required")
        status = ""
        if self.status_at is not None:
            # Not a secondary field: the status says whether Inboxerr may write to the person at
            # all, and a guess ("unsubscrbed" read as active) could mail someone who said no.
            status = cells[self.status_at].strip().lower()
            if status and status not in _STATUSES:
                return self._error(number, cells, f"status: '{status[:40]}' is not a valid status")
        name = cells[self.name_at].strip() if self.name_at is not None else ""
        if not name and (self.first_last[0] is not None or self.first_last[1] is not None):
            name = " ".join(cells[i].strip() for i in self.first_last if i is not None and cells[i].strip())
        if len(name) > 200:
            at = self.name_at if self.name_at is not None and cells[self.name_at].strip() else None
            column = self.error_names[at] if at is not None else "first_name + last_name"
            warnings.append(self._warning(number, cells, column, "name: is longer than 200 characters"))
            if at in self.keep_raw:
                raw["name_raw"] = name
            name = ""
        if raw:
            standard = {name: value.strip() for i, name in self.standard if (value := cells[i]).strip()}
            custom = {name: value.strip() for i, name in self.custom if (value := cells[i]).strip()}
            custom.update(raw)
            return CleanRow(key, email, phone, name, status, _dumps(standard), _dumps(custom))
        # The JSON objects written directly from the cells (keys encoded once, in __init__): the
        # text json.dumps would give for the same dicts, for a fraction of the cost per row.
        standard = ",".join([prefix + _string(value) for i, prefix in self.standard_json if (value := cells[i].strip())])
        custom = ",".join([prefix + _string(value) for i, prefix in self.custom_json if (value := cells[i].strip())])
        return CleanRow(key, email, phone, name, status, "{" + standard + "}", "{" + custom + "}")

    def _field(self, normalize, number: int, cells: list[str], at: int, field_name: str,
               warnings: list[RowError], raw: dict[str, str]) -> str:
        try:
            return normalize(cells[at])
        except RecordError as exc:
            if field_name == self.key_field:
                raise
            warnings.append(self._warning(number, cells, self.error_names[at], str(exc)))
            if at in self.keep_raw:
                raw[f"{field_name}_raw"] = cells[at].strip()
            return ""

    def _warning(self, number: int, cells: list[str], column: str, reason: str) -> RowError:
        return row_warning(number, column, reason, names=self.error_names, cells=cells)

    def _error(self, number: int, cells: list[str], reason: str) -> RowError:
        names = self.error_names
        if len(cells) > self.width:
            names = names + [f"extra_{i + 1}" for i in range(self.width, len(cells))]
        return row_error(number, reason, names=names, cells=cells)


class JsonRowCleaner:
    """Cleans JSON records (seed 000's background upload) with the same rules as the API."""

    def __init__(self, key_field: str):
        self.key_field = key_field

    def missing_key_column(self) -> bool:
        return False

    def clean(self, number: int, record: object, warnings: list[RowError]) -> CleanRow | RowError:
        if isinstance(record, CsvRowError):
            return row_error(number, record.reason, {})
        try:
            clean = clean_record(record, self.key_field)
        except RecordError as exc:
            return row_error(number, str(exc), _values(record))
        if clean.warnings:
            values = _values(record)
            warnings.extend(row_warning(number, w.field, f"{w.field}: {w.reason}", values) for w in clean.warnings)
        status = clean.status if isinstance(record, dict) and record.get("status") else ""
        return CleanRow(
            clean.key, clean.email, clean.phone, clean.name, status,
            _dumps(clean.standard_fields), _dumps(clean.custom_fields),
        )


def _values(record: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}
