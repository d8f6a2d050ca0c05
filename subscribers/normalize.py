"""Validation and normalisation of one subscriber record, shared by every way in
(single create, bulk, background upload, CSV import)."""

from dataclasses import dataclass, field

import math
import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

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

_email_validator = EmailValidator()
# The common shape of an address (dot-atom local part, ASCII domain with a letter TLD), checked
# in one regex match; anything else (IDN, quoted local parts, oddities) goes to Django's full
# validator. Imports validate millions of addresses: this is ~5x cheaper on the usual ones.
_COMMON_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_E164_SHAPE = re.compile(r"\+[1-9]\d{6,14}")


class RecordError(ValueError):
    """A record that cannot be stored; the message names the field."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def normalize_email(value: object) -> str:
    email = str(value or "").strip().lower()
    if not email:
        return ""
    if len(email) > 254:
        raise RecordError("email", f"'{_shorten(email)}' is longer than 254 characters")
    if _COMMON_EMAIL.fullmatch(email):
        return email
    try:
        _email_validator(email)
    except ValidationError:
        raise RecordError("email", f"'{_shorten(email)}' is not a valid email address") from None
    return email


def normalize_phone(value: object, region: str | None = None) -> str:
    raw = str(value or "").strip()
    if not raw:
        return ""
    number = _parse_e164(raw) if _E164_SHAPE.fullmatch(raw) else None
    if number is None:
        try:
            number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            raise RecordError("phone", f"'{_shorten(raw)}' is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise RecordError("phone", f"'{_shorten(raw)}' is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_e164(raw: str) -> phonenumbers.PhoneNumber | None:
    """Build a number from an already-E.164 string without the general parser (half the cost)."""
    digits = raw[1:]
    for length in (1, 2, 3):
        code = int(digits[:length])
        if phonenumbers.region_code_for_country_code(code) != phonenumbers.UNKNOWN_REGION:
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(digits[length:]))
    return None


def normalize_status(value: object) -> str:
    status = str(value or "").strip().lower() or SubscriberStatus.ACTIVE
    if status not in SubscriberStatus.values:
        allowed = ", ".join(SubscriberStatus.values)
        raise RecordError("status", f"'{_shorten(status)}' is not a valid status (one of: {allowed})")
    return status


@dataclass
class CleanRecord:
    key: str
    email: str
    phone: str
    name: str
    status: str
    standard_fields: dict = field(default_factory=dict)
    custom_fields: dict = field(default_factory=dict)


def clean_record(record: dict, key_field: str) -> CleanRecord:
    """Validate and normalise one incoming record for a list keyed on `key_field`.

    Accepts the flat form (`{"email":..., "first_name":..., "plan":...}`) and the nested form
    (`{"email":..., "standard_fields": {...}, "custom_fields": {...}}`); unknown flat keys
    become custom fields. Raises RecordError naming the field.
    """
    if not isinstance(record, dict):
        raise RecordError("record", "must be a JSON object")
    _refuse_unstorable(record)
    email = normalize_email(record.get("email"))
    phone = normalize_phone(record.get("phone"))
    key = email if key_field == KeyField.EMAIL else phone
    if not key:
        raise RecordError(key_field, "is required")
    standard = _json_object(record.get("standard_fields"), "standard_fields")
    custom = _json_object(record.get("custom_fields"), "custom_fields")
    for name, value in record.items():
        if name in TOP_LEVEL_FIELDS or name in ("standard_fields", "custom_fields", "list", "list_name"):
            continue
        target = standard if name in STANDARD_FIELDS else custom
        target.setdefault(str(name), _scalar(value, name))
    name = str(record.get("name") or "").strip()
    if not name:
        name = " ".join(p for p in (standard.get("first_name"), standard.get("last_name")) if p).strip()
    if len(name) > 200:
        raise RecordError("name", "is longer than 200 characters")
    return CleanRecord(
        key=key,
        email=email,
        phone=phone,
        name=name,
        status=normalize_status(record.get("status")),
        standard_fields=standard,
        custom_fields=custom,
    )


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


def _json_object(value: object, field_name: str) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise RecordError(field_name, "must be a JSON object")
    return {str(k): _scalar(v, k) for k, v in value.items()}


def _scalar(value: object, name: object) -> object:
    # Field values are what a merge field prints: strings, numbers, booleans or null.
    if isinstance(value, (dict, list)):
        raise RecordError(str(name), "must be a string, number, boolean or null")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(str(name), "must be a finite number")
    if isinstance(value, str):
        return value.strip()
    return value


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
