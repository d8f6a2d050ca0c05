"""Key/value editing of a JSON object in the admin: one row of two inputs per key, plus an empty
row for a new key, instead of a raw JSON text box. It works without JavaScript (save to get a new
empty row); a few lines of script (inboxerr/static/inboxerr/key_value.js, a file: the
Content-Security-Policy runs no inline handler) add rows in place."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from inboxerr.admin_tools import unstorable_text

KEY_MAX_LENGTH = 100
VALUE_MAX_LENGTH = 5_000

def _display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class KeyValueWidget(forms.Widget):
    """Posts `<name>_key` and `<name>_value` once per row; rows pair up by position."""

    class Media:
        js = ["inboxerr/key_value.js"]

    def value_from_datadict(self, data, files, name: str) -> list[tuple[str, str]]:
        keys, values = data.getlist(f"{name}_key"), data.getlist(f"{name}_value")
        return list(zip(keys, values + [""] * (len(keys) - len(values))))

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return f"{name}_key" not in data

    def rows(self, value: object) -> list[tuple[str, str]]:
        if isinstance(value, dict):
            return [(str(k), _display(v)) for k, v in value.items()]
        if isinstance(value, list):
            return [(str(k), str(v)) for k, v in value if k or v]
        return []

    def render(self, name: str, value: object, attrs: dict | None = None, renderer=None) -> str:
        rows = [*self.rows(value), ("", "")]
        field_id = (attrs or {}).get("id", f"id_{name}")  # on the first key, where the label points
        body = format_html_join(
            "",
            '<tr><td><input type="text" name="{}_key" value="{}" maxlength="{}" aria-label="key"{}></td>'
            '<td><input type="text" name="{}_value" value="{}" class="vTextField" aria-label="value"></td></tr>',
            ((name, key, KEY_MAX_LENGTH, format_html(' id="{}"', field_id) if i == 0 else "", name, text)
             for i, (key, text) in enumerate(rows)),
        )
        return format_html(
            '<div class="key-value"><table><thead><tr><th>key</th><th>value</th></tr></thead>'
            "<tbody>{}</tbody></table>"
            '<a href="#" class="key-value-add">Add a row</a>'
            '<p class="help">Empty a row (key and value) to remove it.</p></div>',
            body,
        )


class KeyValueField(forms.Field):
    """A dict of string keys to string values. Rows with an empty key and value are ignored."""

    widget = KeyValueWidget

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: object) -> object:
        return value

    def to_python(self, value: object) -> dict[str, str]:
        if isinstance(value, dict):
            return value
        result: dict[str, str] = {}
        for key, text in value or []:
            key, text = key.strip(), text.strip()
            if not key and not text:
                continue
            if not key:
                raise ValidationError(f"The value '{text[:40]}' needs a key.")
            if len(key) > KEY_MAX_LENGTH:
                raise ValidationError(f"Keys are at most {KEY_MAX_LENGTH} characters.")
            if len(text) > VALUE_MAX_LENGTH:
                raise ValidationError(f"The value of '{key}' is longer than {VALUE_MAX_LENGTH} characters.")
            problem = unstorable_text(key) or unstorable_text(text)
            if problem:
                raise ValidationError(problem)
            if key in result:
                raise ValidationError(f"The key '{key}' appears twice.")
            result[key] = text
        return result

    def has_changed(self, initial: object, data: object) -> bool:
        try:
            return self.to_python(data) != {str(k): _display(v) for k, v in (initial or {}).items()}
        except ValidationError:
            return True


def keep_unchanged_types(submitted: dict[str, str], stored: dict | None) -> dict:
    """Values arrive as text; one the operator did not touch keeps its stored type (a number
    stays a number), so editing one field does not rewrite the others."""
    stored = stored or {}
    return {key: stored[key] if key in stored and _display(stored[key]) == text else text
            for key, text in submitted.items()}
