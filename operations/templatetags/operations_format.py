"""Filters the dashboard template uses to show figures."""

from django import template

from imports.selectors import format_duration

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """A time left or an age as 12.0s, 3.5m or 2.1h; a dash when unknown."""
    return "-" if seconds is None else format_duration(max(float(seconds), 0.0))


@register.filter
def thousands(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
