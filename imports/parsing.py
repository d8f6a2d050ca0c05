"""Reading uploaded CSV files: encoding and delimiter detection, header normalisation, and a
record iterator that knows the byte offset after every record, so a job can resume exactly where
its last committed chunk ended (quoted newlines included)."""

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from inboxerr.storable import storable, unstorable_reason
from subscribers.normalize import STANDARD_FIELDS

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
# One field may be this large; a larger one makes its row invalid (checked after parsing).
FIELD_SIZE_LIMIT = 1024 * 1024
# The csv module's own limit is set far higher: when it trips inside a quoted field spanning
# lines, the reader restarts mid-field and every following line of it becomes a bogus record.
csv.field_size_limit(64 * 1024 * 1024)

# Headers are matched after normalise_header (lower case, no accents, separators as one space),
# so "Téléphone", "TELEPHONE" and "e-mail" are written here once, plainly. French, German and
# Spanish names of the common columns are included: lists exported from local CRMs use them.
HEADER_ALIASES = {
    "email": ("email", "e mail", "email address", "e mail address", "mail", "emailaddress", "email addr",
              "courriel", "adresse email", "adresse e mail", "adresse mail", "correo", "correo electronico"),
    "phone": ("phone", "mobile", "phone number", "mobile number", "mobile phone", "cell", "cell phone",
              "telephone", "tel", "msisdn", "phonenumber", "sms", "portable", "telephone portable",
              "numero de telephone", "telefon", "handy", "telefonnummer", "telefono", "movil", "celular"),
    "name": ("name", "full name", "fullname", "display name", "contact name", "nom complet"),
    "status": ("status", "subscriber status", "subscription status"),
    "first_name": ("first name", "firstname", "first", "given name", "forename", "prenom", "vorname", "nombre"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom", "nom de famille",
                  "nachname", "familienname", "apellido", "apellidos"),
    "company": ("company", "organisation", "organization", "company name", "employer", "societe", "entreprise",
                "firma", "empresa"),
    "job_title": ("job title", "title", "position", "role"),
    "language": ("language", "lang", "locale", "langue", "sprache", "idioma"),
    "timezone": ("timezone", "time zone", "tz"),
    "country": ("country", "country code", "pays", "pais"),
}
_ALIAS_TO_FIELD = {alias: target for target, aliases in HEADER_ALIASES.items() for alias in aliases}
TOP_LEVEL = ("email", "phone", "name", "status")
IGNORE = "ignore"


class FileFormatError(ValueError):
    """The file cannot be read as CSV at all (as opposed to a bad row)."""


@dataclass(frozen=True)
class CsvFormat:
    encoding: str  # utf-8, utf-8-sig or cp1252
    delimiter: str
    header_end: int  # byte offset just past the header record


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when every byte of the file decodes as UTF-8, else cp1252
    (which maps the bytes latin-1 leaves undefined). Reads the file once, in blocks."""
    with open(path, "rb") as handle:
        head = handle.read(3)
        bom = head == codecs.BOM_UTF8
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(head[3:] if bom else head)
            while block := handle.read(1024 * 1024):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8-sig" if bom else "utf-8"


def _decode(raw: bytes, encoding: str) -> str:
    if encoding == "cp1252":
        # cp1252 leaves five bytes undefined; read those as latin-1 rather than fail.
        return raw.decode("cp1252", errors="strict") if _cp1252_ok(raw) else raw.decode("latin-1")
    return raw.decode("utf-8")


def _cp1252_ok(raw: bytes) -> bool:
    return not any(b in raw for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"))


def detect_format(path: Path, encoding: str | None = None) -> CsvFormat:
    """Encoding (unless the upload already checked it), delimiter and where the header ends."""
    if path.stat().st_size == 0:
        raise FileFormatError("The file is empty")
    encoding = encoding or detect_encoding(path)
    with open(path, "rb") as handle:
        sample_bytes = handle.read(SNIFF_BYTES)
    _refuse_other_formats(sample_bytes)
    sample = sample_bytes.decode("latin-1" if encoding == "cp1252" else "utf-8-sig", errors="ignore")
    delimiter = _sniff_delimiter(sample)
    probe = CsvFormat(encoding, delimiter, header_end=0)
    try:
        _, header, end = next(iter_records(path, probe))
    except StopIteration:
        raise FileFormatError("The file has no header row") from None
    if isinstance(header, CsvRowError):
        raise FileFormatError(f"The header row cannot be read: {header.reason}")
    if not any(cell.strip() for cell in header):
        raise FileFormatError("The header row is empty")
    _refuse_nul_in_header(header)
    return CsvFormat(encoding, delimiter, end)


def _refuse_nul_in_header(header: list[str]) -> None:
    """A header cell names a column: the file is refused rather than the column dropped, as a
    dropped column would be data the operator believes imported (and the header is kept with
    the job, where a NUL cannot be stored)."""
    for number, cell in enumerate(header, start=1):
        if "\x00" in cell:
            name = cell.replace("\x00", "\ufffd").replace("\ufeff", "").strip()[:60]
            raise FileFormatError(
                f"The header row has a NUL character in column {number} ('{name}'); "
                "remove it from the file and upload it again"
            )


# A JSON array of objects or a JSON object: "[{", "[\"", "[1" or "{\"" at the start of the file.
_JSON_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:\[\s*[\[{\"\d-]|\[\s*\]|\{\s*[\"}])")


def _refuse_other_formats(sample: bytes) -> None:
    """Files people upload by mistake would otherwise be read as one odd CSV column: images,
    workbooks, archives and UTF-16 text are full of NUL bytes, and a CSV does not start like a
    JSON document. A stray NUL or two in a text export (a legacy database's padding) is a defect
    of the rows it sits in: those rows are reported invalid and the rest imported (rows.py)."""
    if sample.startswith(b"PK\x03\x04"):
        raise FileFormatError("This is not a text file (this is an Excel workbook: save it as CSV first); upload a CSV file")
    if _looks_utf16(sample):
        raise FileFormatError(
            "This is not a text file the import reads (it is UTF-16 text): save it as CSV in UTF-8 and upload it again"
        )
    if sample.count(b"\x00") * 100 > len(sample):
        raise FileFormatError("This is not a text file; upload a CSV file")
    if _JSON_START.match(sample):
        raise FileFormatError("This file is JSON, not CSV; export it as CSV with a header row")


def _looks_utf16(sample: bytes) -> bool:
    """A UTF-16 byte order mark, or text whose every other byte is NUL (what "Unicode text" from a
    spreadsheet is, without a mark): the NUL half of ASCII-range characters."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    even, odd = sample[0::2], sample[1::2]
    if len(odd) < 4:
        return False
    for nuls, text in ((odd, even), (even, odd)):
        if nuls.count(0) * 10 >= len(nuls) * 9 and text.count(0) * 10 < len(text):
            return True
    return False


def read_header(path: Path, fmt: CsvFormat) -> list[str]:
    _, header, _ = next(iter_records(path, fmt))
    return [cell.replace("\ufeff", "").strip() for cell in header]


def _sniff_delimiter(sample: str) -> str:
    first_line = sample.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        # The sniffer gives up on irregular samples; the header line alone still tells.
        counts = {d: first_line.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


class CsvRowError(list):
    """Stands in for a row's cells when the row could not be parsed; carries the reason."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


def iter_records(
    path: Path, fmt: CsvFormat, start: int | None = None, first_record: int = 1
) -> Iterator[tuple[int, list[str], int]]:
    """Yield (record number, cells, byte offset just past the record).

    Records are numbered from the top of the file, the header being record 1, so a row error's
    number is the spreadsheet row a person would look at. Without `start` reading begins at the
    header; with it (a checkpoint's offset) at that byte, numbering from `first_record`. A
    record that cannot be parsed comes back as a CsvRowError instead of cells; blank lines are
    counted but not yielded."""
    bom = 3 if fmt.encoding == "utf-8-sig" else 0
    position = {"offset": start if start is not None else bom}

    def lines() -> Iterator[str]:
        with open(path, "rb") as handle:
            handle.seek(position["offset"])
            if fmt.encoding == "cp1252":
                for raw in handle:
                    position["offset"] += len(raw)
                    yield _decode(raw, fmt.encoding)
                return
            for raw in handle:  # UTF-8, the usual case, without a call per line
                position["offset"] += len(raw)
                yield raw.decode("utf-8")

    reader = csv.reader(lines(), delimiter=fmt.delimiter, strict=False)
    number = first_record if start is not None else 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, CsvRowError(str(exc)), position["offset"]
        else:
            if cells and any(cells):
                yield number, cells, position["offset"]
        number += 1


# Latin letters that are not a base letter plus an accent, so NFKD leaves them whole.
_OWN_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
                              "ł": "l", "Ł": "L", "đ": "d", "Đ": "D"})


def strip_accents(text: str) -> str:
    """"Téléphone" -> "Telephone", "Größe" -> "Grosse": the letters without their combining marks
    (NFKD), so a header reads the same however the spreadsheet spelt its accents."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_OWN_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise_header(name: str) -> str:
    return re.sub(r"[\s_\-.]+", " ", strip_accents(name.replace("\ufeff", ""))).strip().lower()


def custom_field_name(header: str) -> str:
    """The key a column is stored under as a custom field: "Téléphone fixe" -> "telephone_fixe"."""
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", strip_accents(header).strip()).strip("_").lower()
    return slug[:64] or "column"


@dataclass
class ColumnPlan:
    """Where each column goes: a top-level field, a standard field, a custom field, or nowhere."""

    header: list[str]
    targets: list[str] = field(default_factory=list)  # per column: "email", "standard:first_name", "custom:plan", "ignore"

    def index_of(self, target: str) -> int | None:
        return self.targets.index(target) if target in self.targets else None

    def as_mapping(self) -> dict[str, str]:
        return dict(zip(self.header, self.targets))


def plan_columns(header: list[str], mapping: dict[str, str] | None = None) -> ColumnPlan:
    """Map CSV columns to subscriber fields: an explicit `mapping` (column -> field) wins, then the
    known aliases ("E-mail", "Email Address" -> email; "mobile" -> phone), then the column becomes
    a custom field named after it. The first column claiming a top-level field keeps it."""
    mapping = mapping or {}
    plan = ColumnPlan(header=list(header))
    taken: set[str] = set()
    for column in header:
        target = mapping.get(column)
        if target is None:
            alias = _ALIAS_TO_FIELD.get(normalise_header(column))
            target = alias or f"custom:{custom_field_name(column)}"
        target = _qualify(target)
        if target in taken and target != IGNORE:
            target = f"custom:{custom_field_name(column)}" if target in TOP_LEVEL else target
            if target in taken:
                target = IGNORE
        taken.add(target)
        plan.targets.append(target)
    return plan


def _qualify(target: str) -> str:
    target = target.strip()
    if target in ("", IGNORE, "skip"):
        return IGNORE
    if target in TOP_LEVEL or target.startswith(("standard:", "custom:")):
        return target
    if target in STANDARD_FIELDS:
        return f"standard:{target}"
    return f"custom:{custom_field_name(target)}"


def validate_mapping(mapping: object) -> dict[str, str]:
    """Check a user-supplied mapping (column -> field); raises ValueError naming the problem."""
    if mapping in (None, ""):
        return {}
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError("mapping must be a JSON object of column name -> field name")
    for column, target in mapping.items():
        # Kept with the job and used as field names: both must be storable.
        if reason := unstorable_reason(column) or unstorable_reason(target):
            raise ValueError(f"the entry for column '{storable(column)[:60]}' contains {reason}, which cannot be stored")
    return mapping
