"""Merge fields: templates are compiled once per campaign with Django's template engine and
rendered per recipient from a plain dict (never a model object: a template cannot reach the
database). HTML autoescapes; text and SMS do not."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, VariableNode, tag_re
from django.template.defaulttags import ForNode, IfNode, WithNode

# No loaders: {% include %} and {% extends %} cannot read files on the server.
_TEXT_ENGINE = Engine(autoescape=False, debug=True, loaders=[], string_if_invalid="")
_HTML_ENGINE = Engine(autoescape=True, debug=True, loaders=[], string_if_invalid="")

# Names every recipient has, whatever their list.
RECIPIENT_FIELDS = ("email", "phone", "name", "unsubscribe_url")
# Of those, the ones a recipient may still have empty (unsubscribe_url is always made).
OWN_FIELDS = ("email", "phone", "name")


class TemplateError(ValueError):
    """A template that does not compile; the message gives the line and the reason."""

    def __init__(self, part: str, message: str):
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


@dataclass(frozen=True)
class Compiled:
    subject: object | None
    text: object | None
    html: object | None

    def render(self, context: dict) -> tuple[str, str, str]:
        ctx = Context(context, autoescape=False)
        subject = self.subject.render(ctx).strip() if self.subject else ""
        text = self.text.render(ctx) if self.text else ""
        html = self.html.render(Context(context)) if self.html else ""
        return " ".join(subject.split()), text, html


def _compile(engine: Engine, source: str, part: str):
    if not source:
        return None
    try:
        return engine.from_string(source)
    except TemplateSyntaxError as exc:
        info = getattr(exc, "template_debug", None)
        where = f"line {info['line']}: " if info else ""
        raise TemplateError(part, f"{where}{exc}") from None


def check_braces(source: str, part: str) -> None:
    """Refuse a {{ or {% left open: Django's lexer reads it as plain text (a tag must close on
    its own line), so `Hi {{ first_name` would go out to every recipient verbatim."""
    lines = (source or "").splitlines()
    for number, line in enumerate(lines, start=1):
        rest = tag_re.sub("", line)
        for opening, closing in (("{{", "}}"), ("{%", "%}")):
            if opening in rest:
                where = f"line {number}: " if len(lines) > 1 else ""
                raise TemplateError(part, f"{where}an opening {opening} has no closing {closing}")


def compile_parts(*, subject: str = "", body_text: str = "", body_html: str = "") -> Compiled:
    return Compiled(
        subject=_compile(_TEXT_ENGINE, subject, "subject"),
        text=_compile(_TEXT_ENGINE, body_text, "body_text"),
        html=_compile(_HTML_ENGINE, body_html, "body_html"),
    )


def template_variables(compiled: Compiled) -> dict[str, bool]:
    """Every merge field a template uses, mapped to whether it is required (used without a
    `default` filter somewhere, so a recipient without it would get an empty gap)."""
    found: dict[str, bool] = {}
    for template in (compiled.subject, compiled.text, compiled.html):
        if template is not None:
            _walk(template.nodelist, found, bound=set())
    return dict(sorted(found.items()))


def _note(expression: FilterExpression, found: dict[str, bool], bound: set[str], optional: frozenset = frozenset()) -> None:
    var = getattr(expression.var, "lookups", None)
    if not var:
        return
    name = var[0]
    if name in bound or name in ("forloop", "block"):
        return
    required = name not in optional and not any(
        func.__name__ in ("default", "default_if_none") for func, _ in expression.filters
    )
    found[name] = found.get(name, False) or required


def _walk(nodes, found: dict[str, bool], bound: set[str], optional: frozenset = frozenset()) -> None:
    """`optional`: names tested by an enclosing {% if %}, so used only where they exist."""
    for node in nodes:
        if isinstance(node, VariableNode):
            _note(node.filter_expression, found, bound, optional)
        elif isinstance(node, ForNode):
            _note(node.sequence, found, bound, optional)
            _walk(node.nodelist_loop, found, bound | set(node.loopvars), optional)
            _walk(node.nodelist_empty, found, bound, optional)
            continue
        elif isinstance(node, WithNode):
            for value in node.extra_context.values():
                _note(value, found, bound, optional)
            _walk(node.nodelist, found, bound | set(node.extra_context), optional)
            continue
        elif isinstance(node, IfNode):
            for condition, nodelist in node.conditions_nodelists:
                tested = [name for name in _condition_names(condition) if name not in bound]
                for name in tested:
                    found.setdefault(name, False)
                _walk(nodelist, found, bound, optional | frozenset(tested))
            continue
        for attr in getattr(node, "child_nodelists", ()):
            child = getattr(node, attr, None)
            if child:
                _walk(child, found, bound, optional)


def _condition_names(condition) -> list[str]:
    names = []
    if condition is None:
        return names
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        lookups = getattr(value.var, "lookups", None)
        if lookups:
            names.append(lookups[0])
    for side in ("first", "second"):
        child = getattr(condition, side, None)
        if child is not None:
            names.extend(_condition_names(child))
    return names


def recipient_context(*, email: str = "", phone: str = "", name: str = "", standard_fields: dict | None = None,
                      custom_fields: dict | None = None, variables: dict | None = None, unsubscribe_url: str = "") -> dict:
    """The plain dict a template sees: fields first, then per-message variables, then the
    recipient's own address and name where known (a recipient from a CSV has its name only as
    a variable)."""
    context: dict = {}
    context.update(standard_fields or {})
    context.update(custom_fields or {})
    context.update(variables or {})
    for key, value in (("email", email), ("phone", phone), ("name", name)):
        if value or key not in context:
            context[key] = value
    context["unsubscribe_url"] = unsubscribe_url
    return context


def missing_variables(required: dict[str, bool], available: set[str]) -> list[str]:
    """Required merge fields that the audience does not have."""
    return sorted(name for name, is_required in required.items() if is_required and name not in available and name not in RECIPIENT_FIELDS)





def recipient_lacks(required: Iterable[str], *, fields: Iterable[str], email: str = "", phone: str = "",
                    name: str = "") -> list[str]:
    """Required merge fields one recipient would get empty: a field none of their lists' fields
    give, or their own email, phone or name left blank (a field of that name fills the gap, as
    recipient_context does)."""
    have = set(fields) | {key for key, value in (("email", email), ("phone", phone), ("name", name)) if value}
    return sorted(n for n in required if n not in have and (n in OWN_FIELDS or n not in RECIPIENT_FIELDS))
