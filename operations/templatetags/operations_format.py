"""Filters the dashboard template uses to show figures."""

from django import template

from inboxerr.admin_tools import format_seconds

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """A time left or an age in the console's words ('12 min 5 s'); a dash when unknown."""
    return format_seconds(seconds)


@register.filter
def thousands(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
