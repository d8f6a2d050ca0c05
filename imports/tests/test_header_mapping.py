"""How a file's header row is read into fields: aliases in several languages, accents ignored,
and custom field keys a person can type in a merge field."""

import pytest

from imports.parsing import custom_field_name, normalise_header, plan_columns


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("Téléphone", "phone"), ("telephone", "phone"), ("Tél", "phone"), ("Mobile", "phone"),
        ("Portable", "phone"), ("Prénom", "standard:first_name"), ("PRENOM", "standard:first_name"),
        ("Vorname", "standard:first_name"), ("Nombre", "standard:first_name"), ("Nom", "standard:last_name"),
        ("Nachname", "standard:last_name"), ("Apellido", "standard:last_name"), ("Courriel", "email"),
        ("E-mail", "email"), ("Mail", "email"), ("Société", "standard:company"), ("Pays", "standard:country"),
    ],
)
def test_accented_and_foreign_headers_map_to_their_fields(header, target):
    assert plan_columns([header]).targets == [target]


def test_a_french_export_maps_every_column_and_keeps_the_rest_as_readable_custom_fields():
    plan = plan_columns(["Courriel", "Prénom", "Nom", "Téléphone", "Téléphone fixe", "Ville"])

    assert plan.targets == [
        "email", "standard:first_name", "standard:last_name", "phone", "custom:telephone_fixe", "custom:ville",
    ]


def test_custom_field_keys_transliterate_accents_instead_of_dropping_letters():
    assert custom_field_name("Téléphone fixe") == "telephone_fixe"
    assert custom_field_name("Ångström Größe Ærø") == "angstrom_grosse_aero"
    assert custom_field_name("  Plan (2024)  ") == "plan_2024"
    assert custom_field_name("日本") == "column"


def test_headers_compare_without_accents_case_or_separators():
    assert normalise_header("\ufeff Adresse_E-mail ") == "adresse e mail"
    assert normalise_header("TÉLÉPHONE") == "telephone"


def test_english_headers_map_as_before():
    plan = plan_columns(["E-Mail Address", "First Name", "Surname", "Phone", "Plan", "Notes"])

    assert plan.targets == ["email", "standard:first_name", "standard:last_name", "phone", "custom:plan", "custom:notes"]


def test_a_second_phone_column_in_another_language_becomes_a_custom_field():
    assert plan_columns(["Phone", "Téléphone"]).targets == ["phone", "custom:telephone"]


def test_an_explicit_mapping_wins_over_the_aliases():
    assert plan_columns(["Nom", "Prénom"], {"Nom": "name"}).targets == ["name", "standard:first_name"]
