"""Validation and normalisation of one record (every way in shares it) and the CSV cell guard."""

import pytest

from subscribers.exports import safe_cell
from subscribers.normalize import RecordError, clean_record, normalize_email, normalize_phone, normalize_status


@pytest.mark.parametrize(
    "raw, expected",
    [(" Ann@Example.COM ", "ann@example.com"), ("", ""), (None, ""), ("o'brien+tag@mail.example.org", "o'brien+tag@mail.example.org")],
)
def test_emails_are_trimmed_and_lower_cased(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["plainaddress", "a@", "@example.com", "a b@example.com", "a@example..com"])
def test_an_invalid_email_is_refused_naming_the_field(raw):
    with pytest.raises(RecordError) as caught:
        normalize_email(raw)

    assert caught.value.field == "email"
    assert str(caught.value) == f"email: '{raw.lower()}' is not a valid email address"


def test_a_very_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(RecordError) as caught:
        normalize_email("x" * 300)

    assert len(caught.value.message) < 120
    assert "…" in caught.value.message


@pytest.mark.parametrize(
    "raw, expected",
    [("(415) 555-2671", "+14155552671"), ("+1 415-555-2671", "+14155552671"), ("+44 20 7183 8750", "+442071838750")],
)
def test_phones_are_stored_in_e164(raw, expected):
    assert normalize_phone(raw) == expected


def test_a_phone_without_country_code_uses_the_default_region(settings):
    settings.PHONE_DEFAULT_REGION = "GB"

    assert normalize_phone("020 7183 8750") == "+442071838750"


@pytest.mark.parametrize("raw, message", [("12", "is not a valid phone number"), ("call me", "is not a phone number")])
def test_an_invalid_phone_is_refused_naming_the_field(raw, message):
    with pytest.raises(RecordError) as caught:
        normalize_phone(raw)

    assert caught.value.field == "phone"
    assert message in caught.value.message


def test_status_defaults_to_active_and_is_case_insensitive():
    assert normalize_status(None) == "active"
    assert normalize_status(" Bounced ") == "bounced"
    with pytest.raises(RecordError, match="status: 'asleep' is not a valid status"):
        normalize_status("asleep")


def test_clean_record_sorts_flat_fields_and_derives_the_name():
    clean = clean_record(
        {"email": "A@B.io", "first_name": " Ann ", "last_name": "Lee", "plan": "pro", "vip": True, "list": "News"},
        "email",
    )

    assert (clean.key, clean.email, clean.name, clean.status) == ("a@b.io", "a@b.io", "Ann Lee", "active")
    assert clean.standard_fields == {"first_name": "Ann", "last_name": "Lee"}
    assert clean.custom_fields == {"plan": "pro", "vip": True}


def test_nested_fields_win_over_flat_ones_of_the_same_name():
    clean = clean_record({"email": "a@b.io", "custom_fields": {"plan": "nested"}, "plan": "flat"}, "email")

    assert clean.custom_fields == {"plan": "nested"}


def test_a_phone_keyed_record_is_keyed_on_its_e164_number():
    clean = clean_record({"phone": "(415) 555-2671", "email": ""}, "phone")

    assert (clean.key, clean.phone, clean.email) == ("+14155552671", "+14155552671", "")


@pytest.mark.parametrize(
    "record, key_field, field",
    [
        ({"email": "a@b.io"}, "phone", "phone"),
        ({"phone": "+14155552671"}, "email", "email"),
        (["a@b.io"], "email", "record"),
        ({"email": "a@b.io", "standard_fields": ["x"]}, "email", "standard_fields"),
    ],
)
def test_clean_record_refuses_bad_records_naming_the_field(record, key_field, field):
    with pytest.raises(RecordError) as caught:
        clean_record(record, key_field)

    assert caught.value.field == field


@pytest.mark.parametrize(
    "record, field",
    [
        ({"email": "a@b.io", "custom_fields": {"tags": ["a", "b"]}}, "custom_fields.tags"),
        ({"email": "a@b.io", "name": "n" * 201}, "name"),
        ({"email": "a@b.io", "custom_fields": {"score": float("inf")}}, "custom_fields.score"),  # jsonb cannot store it
    ],
)
def test_a_bad_secondary_value_is_left_out_or_refused_when_strict(record, field):
    clean = clean_record(record, "email")
    assert clean.key == "a@b.io" and [w.field for w in clean.warnings] == [field]
    assert clean.custom_fields == {} and clean.name == ""

    with pytest.raises(RecordError) as caught:
        clean_record(record, "email", strict=True)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=cmd", "'=cmd"),
        ("+1+1", "'+1+1"),
        ("-1+cmd", "'-1+cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("+15555550100", "+15555550100"),
        ("-12.50", "-12.50"),
        ("plain text", "plain text"),
        (42, 42),
        (-3.5, -3.5),
        (None, ""),
        (True, "True"),
    ],
)
def test_safe_cell_neutralises_formulas_but_keeps_data(value, expected):
    assert safe_cell(value) == expected


# --- Internationalized addresses (RFC 6531) and the key-only rule ---------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Renée.Lee6@Outlook.com", "renée.lee6@outlook.com"),  # UTF-8 local part, lower-cased
        ("user@bücher.example", "user@bücher.example"),  # IDN domain: stored in Unicode
        ("USER@xn--bcher-kva.EXAMPLE", "user@bücher.example"),  # punycode input: the same key
        ("Rene\u0301e@example.com", "renée@example.com"),  # decomposed accent: NFC
        ("用户@例子.广告", "用户@例子.广告"),
    ],
)
def test_internationalized_addresses_are_valid_and_stored_in_one_form(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["ab--cd@x.com", "a@ab--cd.com", "a@xn--zz.com", "a@localhost", "ü@", "a@exa mple.com"])
def test_the_fast_path_accepts_nothing_the_full_check_refuses(raw):
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(raw.lower(), check_deliverability=False, test_environment=True)
        full = True
    except EmailNotValidError:
        full = False
    try:
        ours = bool(normalize_email(raw))
    except RecordError:
        ours = False
    assert ours == full


@pytest.mark.parametrize("raw", ["+390612345678", "+39 06 1234 5678", "+39 (06) 1234-5678"])
def test_an_italian_number_keeps_its_leading_zero(raw):
    assert normalize_phone(raw) == "+390612345678"


def test_every_e164_number_is_what_phonenumbers_says():
    import phonenumbers

    for raw in ["+390612345678", "+14155552671", "+442071838750", "+5491123456789", "+525512345678", "+61491570156"]:
        number = phonenumbers.parse(raw, None)
        expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
            if phonenumbers.is_valid_number(number) else None
        try:
            ours = normalize_phone(raw)
        except RecordError:
            ours = None
        assert ours == expected, raw


def test_a_bad_secondary_field_is_left_out_with_a_warning():
    clean = clean_record(
        {"email": "renée@bücher.example", "phone": "+1-999-555-0100", "name": "N" * 201, "tags": ["a", "b"]}, "email"
    )

    assert (clean.key, clean.phone, clean.name, clean.custom_fields) == ("renée@bücher.example", "", "", {})
    assert [(w.field, w.value) for w in clean.warnings] == [
        ("phone", "+1-999-555-0100"), ("tags", '["a", "b"]'), ("name", "N" * 201),
    ]
    assert "not a valid phone number" in clean.warnings[0].reason


def test_on_a_phone_keyed_list_a_bad_email_is_the_warning():
    clean = clean_record({"email": "nope", "phone": "+1 415 555 2671"}, "phone")

    assert (clean.key, clean.email) == ("+14155552671", "")
    assert [w.field for w in clean.warnings] == ["email"]
    with pytest.raises(RecordError, match="phone"):
        clean_record({"email": "a@example.com", "phone": "+1-999-555-0100"}, "phone")


def test_strict_mode_refuses_a_bad_secondary_field():
    with pytest.raises(RecordError, match="phone"):
        clean_record({"email": "a@example.com", "phone": "12"}, "email", strict=True)


def test_the_latin_fast_path_gives_what_the_full_check_gives():
    """Addresses with accented Latin letters in the local part skip email-validator: every one
    it takes must be one the full check takes, in the same form."""
    from email_validator import EmailNotValidError, validate_email

    locals_ = ["renée.lee6", "zoë", "josé.garcía", "müller-ß", "ø.å", "ÿ" * 33, "é" * 32, "a.é.", ".é", "é..a", "à÷b",
               "ä×b", "e\u0301", "ñ+tag", "o'brien.é"]
    domains = ["outlook.com", "mail.de", "ab--cd.com", "x.y", "exa_mple.com", "bücher.example"]
    for raw in [f"{local}@{domain}" for local in locals_ for domain in domains]:
        try:
            checked = validate_email(raw, check_deliverability=False, globally_deliverable=False, test_environment=True,
                                     allow_smtputf8=True, allow_quoted_local=False, allow_domain_literal=False)
            full = f"{checked.local_part}@{checked.domain}".lower() if "." in checked.ascii_domain else None
        except EmailNotValidError:
            full = None
        try:
            ours = normalize_email(raw)
        except RecordError:
            ours = None
        assert ours == full, raw


def test_north_american_numbers_in_every_exported_shape_are_what_phonenumbers_says():
    """+1 numbers skip parse() and is_valid_number (subscribers/normalize.py reads the same
    metadata): the answers, for valid area codes, unassigned ones, toll-free and Caribbean
    numbers and exchanges starting 0 or 1, are the parser's."""
    import random

    import phonenumbers

    rng = random.Random(5)
    for _ in range(6000):
        digits = f"{rng.choice(['800', '900', '876', '268', '787', '340', '246', '809', '868', str(rng.randrange(200, 1000))])}{rng.randrange(1000):03d}{rng.randrange(10000):04d}"
        raw = rng.choice([f"+1{digits}", f"+1-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                          f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}", f"+1.{digits[:3]}.{digits[3:6]}.{digits[6:]}"])
        number = phonenumbers.parse(raw, "US")
        expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
            if phonenumbers.is_valid_number(number) else None
        try:
            ours = normalize_phone(raw)
        except RecordError as exc:
            assert exc.message == f"'{raw}' is not a valid phone number"
            ours = None
        assert ours == expected, raw
