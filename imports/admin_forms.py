"""The forms of the admin's import wizard. They parse what the operator typed; every rule about
lists and files is the services' (subscribers.services.list_create, imports.services)."""

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat

from imports.wording import target_label
from subscribers.models import KeyField, SubscriberList
from subscribers.normalize import STANDARD_FIELDS


class ListChoiceField(forms.ModelChoiceField):
    def __init__(self, *args, show_owner: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.show_owner = show_owner

    def label_from_instance(self, obj: SubscriberList) -> str:
        owner = f", {obj.owner}" if self.show_owner else ""
        return f"{obj.name} (key: {obj.key_field}, {obj.subscriber_count:,} subscribers{owner})"


class ChooseListForm(forms.Form):
    list = ListChoiceField(
        queryset=SubscriberList.objects.none(), label="Existing list", empty_label=None,
        help_text="The file's subscribers are added to this list, or update the ones already on it.",
    )

    def __init__(self, *args, lists: QuerySet[SubscriberList], show_owner: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["list"].queryset = lists
        self.fields["list"].show_owner = show_owner


class NewListForm(forms.Form):
    name = forms.CharField(label="Name of the new list", max_length=200)
    key_field = forms.ChoiceField(
        label="Key field", choices=KeyField.choices, initial=KeyField.EMAIL, widget=forms.RadioSelect,
        help_text="What tells two subscribers apart: one subscriber per email address, or per phone number. "
                  "It cannot change later.",
    )


class UploadForm(forms.Form):
    # Not `required`: a file cut off at the size limit is missing too, and deserves its own message.
    # Empty files are allowed here because the service says "The file is empty" itself.
    file = forms.FileField(
        label="CSV file", required=False, allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv,text/plain"}),
    )

    def __init__(self, *args, too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.too_large = too_large
        self.fields["file"].help_text = (
            f"Up to {filesizeformat(settings.IMPORT_MAX_BYTES)}. UTF-8 (with or without BOM) or Windows-1252; "
            "comma, semicolon, tab or pipe between values; a header row first."
        )

    def clean_file(self):
        # The upload handler stopped writing at the limit, so there is no file to look at.
        if self.too_large:
            raise forms.ValidationError(
                f"The file is larger than the upload limit of {filesizeformat(settings.IMPORT_MAX_BYTES)}. "
                "Split it, or ask for IMPORT_MAX_BYTES to be raised."
            )
        if not self.cleaned_data.get("file"):
            raise forms.ValidationError("Choose a CSV file to upload.")
        return self.cleaned_data["file"]


def target_choices(targets: list[str]) -> list[tuple[str, str]]:
    """Where a column can go: the top-level fields, the standard fields, the custom fields the
    file's own columns suggest, or nowhere."""
    choices = [("email", "email"), ("phone", "phone"), ("name", "name"), ("status", "status")]
    choices += [(f"standard:{f}", target_label(f"standard:{f}")) for f in STANDARD_FIELDS]
    customs = sorted({t for t in targets if t.startswith("custom:")})
    choices += [(t, target_label(t)) for t in customs]
    choices.append(("ignore", "(do not import this column)"))
    return choices


class MappingForm(forms.Form):
    """One select per column of the file, named col_<index>, labelled with the column's header,
    and beside it a box, keep_<index>: keep a value that is not valid as written."""

    def __init__(self, *args, header: list[str], targets: list[str], keep_raw: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        choices = target_choices(targets)
        for index, (name, target) in enumerate(zip(header, targets)):
            label = name or f"(column {index + 1} has no header)"
            self.fields[f"col_{index}"] = forms.ChoiceField(label=label, choices=choices, initial=target)
            self.fields[f"keep_{index}"] = forms.BooleanField(
                label=f"Keep a bad value of {label} as written", required=False, initial=name in keep_raw,
            )

    def mapping(self) -> dict[str, str]:
        return {name: self.cleaned_data[f"col_{index}"] for index, name in enumerate(self.header)}

    def keep_raw(self) -> list[str]:
        return [name for index, name in enumerate(self.header) if self.cleaned_data[f"keep_{index}"]]


class OptionsForm(forms.Form):
    update_existing = forms.BooleanField(
        label="Update subscribers already on the list", required=False, initial=True,
        help_text="Off: a row whose key is already on the list leaves that subscriber as it is. "
                  "Blank cells never erase, and unsubscribed or bounced subscribers stay so either way.",
    )
    force = forms.BooleanField(
        label="Import this file again", required=False,
        help_text="Needed only when this exact file (same SHA-256) was imported into this list before.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")  # checkbox labels follow their box; a colon reads oddly there
        super().__init__(*args, **kwargs)
