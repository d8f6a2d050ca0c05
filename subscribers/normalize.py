"""Validation and normalisation of one subscriber record, shared by every way in
(single create, bulk, background upload, CSV import)."""

from dataclasses import dataclass, field

import json
import math
import re
import unicodedata

import phonenumbers
from django.conf import settings
from email_validator import EmailNotValidError, validate_email

from inboxerr.storable import storable, unstorable_reason
from subscribers.models import KeyField, SubscriberStatus

# Fields that have a meaning of their own in Inboxerr; anything else is a custom field.
STANDARD_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "job_title",
    "language",
    "timezone",
    "country",
)
TOP_LEVEL_FIELDS = ("email", "phone", "name", "status")

# The common shape of an address (ASCII dot-atom local part, ASCII domain with a letter TLD),
# checked in one regex match; anything else (UTF-8 local parts, IDN domains, oddities) goes to
# email-validator. Imports validate millions of addresses: this is several times cheaper on the
# usual ones. It must accept nothing the full check refuses: a domain with "--" (punycode, or
# the hyphens IDNA reserves) always takes the full check, and test_normalize compares the two.
_COMMON_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
# The same with the lower-case letters of Latin-1 in the local part (`renée.lee6@...`, from names
# in European exports): valid UTF-8 local parts (RFC 6531) that need no call to email-validator.
_LATIN_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~\u00df-\u00f6\u00f8-\u00ff-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~\u00df-\u00f6\u00f8-\u00ff-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


class RecordError(ValueError):
    """A record that cannot be stored; the message names the field."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def normalize_email(value: object) -> str:
    """An address as Inboxerr stores it: trimmed, lower-cased, Unicode NFC. Internationalized
    addresses are valid (RFC 6531): a UTF-8 local part is kept as written (lower-cased), and an
    IDN domain is stored in its Unicode form (`bücher.example`, never `xn--bcher-kva.example`),
    so both spellings of one domain are one key. The email channel converts the domain to
    punycode on the wire and asks for SMTPUTF8 only when the local part needs it."""
    email = unicodedata.normalize("NFC", str(value or "").strip()).lower()
    if not email:
        return ""
    if len(email) > 254:
        raise RecordError("email", f"'{_shorten(email)}' is longer than 254 characters")
    if email.isascii():
        if _COMMON_EMAIL.fullmatch(email) and email.index("@") <= 64 and "--" not in email[email.index("@"):]:
            return email
    elif _LATIN_EMAIL.fullmatch(email) and "--" not in email[(at := email.index("@")):]:
        if len(email[:at].encode()) <= 64 and len(email.encode()) <= 254:
            return email
    try:
        checked = validate_email(
            email, check_deliverability=False, globally_deliverable=False, test_environment=True,
            allow_smtputf8=True, allow_quoted_local=False, allow_domain_literal=False,
        )
    except EmailNotValidError:
        raise RecordError("email", f"'{_shorten(email)}' is not a valid email address") from None
    if "." not in checked.ascii_domain:
        # A bare host name ("user@intranet") is no address on the Internet.
        raise RecordError("email", f"'{_shorten(email)}' is not a valid email address")
    normalized = f"{checked.local_part}@{checked.domain}".lower()
    if len(normalized) > 254:
        raise RecordError("email", f"'{_shorten(email)}' is longer than 254 characters")
    return normalized


def normalize_phone(value: object, region: str | None = None) -> str:
    # No hand-written E.164 shortcut that guesses: one once built numbers from the digits and
    # lost the leading zero Italian numbers keep (+39 06...), refusing valid numbers. The one
    # below takes only "+1" and ten digits that cannot start with 0 or 1, the shape parse()
    # turns into exactly that number, and decides validity from phonenumbers' own metadata.
    raw = str(value or "").strip()
    if not raw:
        return ""
    if (nanp := _NANP_SHAPE(raw)) is not None:
        national = nanp[1] + nanp[2] + nanp[3]
        if _nanp_valid(national):
            return "+1" + national
        raise RecordError("phone", f"'{_shorten(raw)}' is not a valid phone number")
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise RecordError("phone", f"'{_shorten(raw)}' is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise RecordError("phone", f"'{_shorten(raw)}' is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# "+14155552671", "+1 415 555 2671", "+1-415-555-2671", "+1.415.555.2671": North American numbers
# as CRMs export them, most of the phones an import meets.
_NANP_SHAPE = re.compile(r"\+1[ .-]?([2-9]\d\d)[ .-]?(\d{3})[ .-]?(\d{4})").fullmatch


def _nanp_valid(national: str) -> bool:
    """phonenumbers.is_valid_number(+1 and these ten digits), read from the same metadata in the
    same order, with each region's patterns compiled once and its number types joined into one
    pattern: two regex matches for most numbers instead of a walk over ~20 patterns at ~30 us
    a number. test_normalize compares the two on thousands of numbers."""
    for leading, general, types in _nanp_regions():
        if leading is not None:
            if leading.match(national):
                return bool(general(national) and types(national))
        elif general(national) and types(national):
            return True
    return False  # no region of +1 knows the number


_NANP_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
               "fixed_line", "mobile")
_NANP_REGIONS: list | None = None


def _nanp_regions() -> list:
    global _NANP_REGIONS
    if _NANP_REGIONS is None:
        regions = []
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if metadata is None:
                continue
            # A description counts for a ten-digit number when it allows that length (or names
            # none) and has a pattern: what phonenumbers' _is_number_matching_desc asks.
            patterns = [
                desc.national_number_pattern
                for desc in (getattr(metadata, name, None) for name in ("general_desc", *_NANP_TYPES))
                if desc is not None and desc.national_number_pattern
                and (not desc.possible_length or 10 in desc.possible_length)
            ]
            general = metadata.general_desc
            if not patterns or general is None or patterns[0] != general.national_number_pattern:
                general_match = types_match = _never
            else:
                general_match = re.compile(patterns[0]).fullmatch
                types_match = re.compile("|".join(f"(?:{p})" for p in patterns[1:])).fullmatch if patterns[1:] else _never
            leading = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
            regions.append((leading, general_match, types_match))
        _NANP_REGIONS = regions
    return _NANP_REGIONS


def _never(_: str) -> None:
    return None


def normalize_status(value: object) -> str:
    status = str(value or "").strip().lower() or SubscriberStatus.ACTIVE
    if status not in SubscriberStatus.values:
        allowed = ", ".join(SubscriberStatus.values)
        raise RecordError("status", f"'{_shorten(status)}' is not a valid status (one of: {allowed})")
    return status


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """A secondary field that could not be taken as it was: the record is kept without it."""

    field: str
    value: str
    reason: str


@dataclass
class CleanRecord:
    key: str
    email: str
    phone: str
    name: str
    status: str
    standard_fields: dict = field(default_factory=dict)
    custom_fields: dict = field(default_factory=dict)
    warnings: list[FieldWarning] = field(default_factory=list)

    def as_fields(self) -> dict:
        """The subscriber's model fields."""
        return {
            "key": self.key, "email": self.email, "phone": self.phone, "name": self.name, "status": self.status,
            "standard_fields": self.standard_fields, "custom_fields": self.custom_fields,
        }


def clean_record(record: dict, key_field: str, *, strict: bool = False) -> CleanRecord:
    """Validate and normalise one incoming record for a list keyed on `key_field`.

    Accepts the flat form (`{"email":..., "first_name":..., "plan":...}`) and the nested form
    (`{"email":..., "standard_fields": {...}, "custom_fields": {...}}`); unknown flat keys
    become custom fields. Only the key decides whether the record is taken: a bad key (or a
    record that is not an object, a field that cannot be stored, an unknown status) raises
    RecordError naming the field; a bad secondary field (a phone on an email-keyed list, an
    over-long name, a value that is not a scalar) is left out and reported in `warnings`, so a
    real-world export is not lost for a column Inboxerr does not key on. `strict` (a person
    editing one subscriber in a form) makes those errors too.
    """
    if not isinstance(record, dict):
        raise RecordError("record", "must be a JSON object")
    _refuse_unstorable(record)
    warnings: list[FieldWarning] = []

    def secondary(exc: RecordError, value: object) -> None:
        if strict:
            raise exc
        warnings.append(FieldWarning(exc.field, _text(value), exc.message))

    email = _normalized(normalize_email, record.get("email"), key_field == KeyField.EMAIL, secondary)
    phone = _normalized(normalize_phone, record.get("phone"), key_field == KeyField.PHONE, secondary)
    key = email if key_field == KeyField.EMAIL else phone
    if not key:
        raise RecordError(key_field, "is required")
    status = normalize_status(record.get("status"))
    standard = _json_object(record.get("standard_fields"), "standard_fields", secondary)
    custom = _json_object(record.get("custom_fields"), "custom_fields", secondary)
    for name, value in record.items():
        if name in TOP_LEVEL_FIELDS or name in ("standard_fields", "custom_fields", "list", "list_name"):
            continue
        target = standard if name in STANDARD_FIELDS else custom
        if str(name) not in target and (item := _scalar(value, str(name), secondary)) is not _LEFT_OUT:
            target[str(name)] = item
    name = str(record.get("name") or "").strip()
    if not name:
        name = " ".join(str(p) for p in (standard.get("first_name"), standard.get("last_name")) if p).strip()
    if len(name) > 200:
        secondary(RecordError("name", "is longer than 200 characters"), name)
        name = ""
    return CleanRecord(
        key=key,
        email=email,
        phone=phone,
        name=name,
        status=status,
        standard_fields=standard,
        custom_fields=custom,
        warnings=warnings,
    )


def _normalized(normalize, value: object, is_key: bool, secondary) -> str:
    try:
        return normalize(value)
    except RecordError as exc:
        if is_key:
            raise
        secondary(exc, value)
        return ""


def _refuse_unstorable(record: dict) -> None:
    """Names the first field whose name or text PostgreSQL cannot store. Checked before
    anything else, as other reasons quote the value. The API's parser refuses such text for its
    own requests; records read from a file (the background upload's job) meet only this check."""
    for name, value in record.items():
        if isinstance(value, dict) and name in ("standard_fields", "custom_fields"):
            pairs = [(f"{name}.{storable(str(k))}", k, v) for k, v in value.items()]
        else:
            pairs = [(storable(str(name)), name, value)]
        for field_name, key, item in pairs:
            if isinstance(key, str) and (reason := unstorable_reason(key)):
                raise RecordError(field_name, f"the field name contains {reason}, which cannot be stored")
            if isinstance(item, str) and (reason := unstorable_reason(item)):
                raise RecordError(field_name, f"contains {reason}, which cannot be stored")


_LEFT_OUT = object()


def _json_object(value: object, field_name: str, secondary) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise RecordError(field_name, "must be a JSON object")
    cleaned = {}
    for key, item in value.items():
        if (item := _scalar(item, f"{field_name}.{key}", secondary)) is not _LEFT_OUT:
            cleaned[str(key)] = item
    return cleaned


def _scalar(value: object, name: str, secondary) -> object:
    # Field values are what a merge field prints: strings, numbers, booleans or null.
    if isinstance(value, (dict, list)):
        secondary(RecordError(name, "must be a string, number, boolean or null"), value)
        return _LEFT_OUT
    if isinstance(value, float) and not math.isfinite(value):
        secondary(RecordError(name, "must be a finite number"), value)
        return _LEFT_OUT
    if isinstance(value, str):
        return value.strip()
    return value


def _text(value: object) -> str:
    """A value as the report quotes it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True)[:1000]
    except (TypeError, ValueError):
        return str(value)[:1000]


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
