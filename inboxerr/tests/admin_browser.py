"""A small stand-in for a browser in admin tests: it reads the form a page shows (hidden inputs,
selected options, checked boxes, textareas) and posts it back with the CSRF token the page
carries, through a client that enforces CSRF as the real middleware does."""

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.test import Client

TEXT_INPUTS = {"text", "email", "url", "number", "password", "search", "tel", "date", "time", "datetime-local"}


@dataclass
class FormField:
    name: str
    kind: str  # an input type, "textarea" or "select"
    options: list[str] = field(default_factory=list)
    css_class: str = ""


class _FormParser(HTMLParser):
    """Collects the fields of the first form whose id ends in `form_suffix`."""

    def __init__(self, form_suffix: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_suffix = form_suffix
        self.in_form = False
        self.data: dict[str, list[str]] = {}
        self.fields: dict[str, FormField] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_multiple = False
        self._in_option = False
        self._option_value: str | None = None
        self._option_selected = False
        self._option_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith(self.form_suffix) and not self.fields:
            self.in_form = True
            return
        if not self.in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "file", "reset"):
                return
            if kind in ("checkbox", "radio"):
                self.fields.setdefault(name, FormField(name, kind))
                if "checked" in a:
                    self.data.setdefault(name, []).append(a.get("value", "on"))
                return
            self.fields[name] = FormField(name, kind, css_class=a.get("class", ""))
            self.data[name] = [a.get("value", "")]
        elif tag == "textarea" and name:
            self.fields[name] = FormField(name, "textarea")
            self.data[name] = [""]
            self._textarea = name
        elif tag == "select" and name:
            self.fields[name] = FormField(name, "select")
            self._select, self._select_multiple = name, "multiple" in a
            self.data.setdefault(name, [])
        elif tag == "option" and self._select:
            self._in_option = True
            self._option_value, self._option_selected, self._option_text = a.get("value"), "selected" in a, ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea][0] += data
        elif self._in_option:
            self._option_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.in_form:
            self.in_form = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "option" and self._in_option:
            self._in_option = False
            value = self._option_value if self._option_value is not None else self._option_text.strip()
            self.fields[self._select].options.append(value)
            if self._option_selected:
                self.data[self._select].append(value)
        elif tag == "select" and self._select:
            select = self._select
            if not self.data[select] and not self._select_multiple and self.fields[select].options:
                self.data[select] = [self.fields[select].options[0]]  # what a browser submits
            self._select = None


@dataclass
class PageForm:
    data: dict[str, list[str]]
    fields: dict[str, FormField]

    def text_fields(self) -> list[str]:
        return [f.name for f in self.fields.values()
                if (f.kind in TEXT_INPUTS or f.kind == "textarea") and f.name != "csrfmiddlewaretoken"]

    def with_value(self, name: str, value: str) -> dict[str, list[str]]:
        return {**self.data, name: [value]}


def read_form(html: str, form_suffix: str = "_form") -> PageForm:
    parser = _FormParser(form_suffix)
    parser.feed(html)
    return PageForm(parser.data, parser.fields)


def browser_for(user) -> Client:
    """A logged-in client that, like a browser, must send the CSRF token with every POST."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def page_csrf_token(client: Client, url: str) -> str:
    """The CSRF token of the form on the page at `url`, as a browser that just opened it has it."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def csrf_token(client: Client) -> str:
    if "csrftoken" not in client.cookies:
        client.get("/admin/")
    return client.cookies["csrftoken"].value


def submit(client: Client, url: str, changes: dict[str, object] | None = None, *, form_suffix: str = "_form",
           follow: bool = False):
    """Load the page at `url`, change some of its form's values (a list for several values, None
    to leave a field out) and post it with the page's CSRF token, as a person in a browser would."""
    page = client.get(url)
    assert page.status_code == 200, f"GET {url} answered {page.status_code}"
    data = read_form(page.content.decode(), form_suffix).data
    for name, value in (changes or {}).items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    data["csrfmiddlewaretoken"] = [csrf_token(client)]
    return client.post(url, data, follow=follow)


def action(client: Client, changelist_url: str, name: str, pks: list[object], *, follow: bool = True):
    """Run an admin action on a selection from the changelist, with the page's CSRF token."""
    data = {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0",
            "csrfmiddlewaretoken": csrf_token(client)}
    return client.post(changelist_url, data, follow=follow)


def field_errors(response, name: str) -> list[str]:
    """The errors shown on one field of a refused admin form."""
    form = response.context["adminform"].form
    return list(form.errors.get(name, []))


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
