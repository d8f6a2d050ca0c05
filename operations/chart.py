"""The 24-hour activity chart as server-rendered SVG geometry: two per-minute series (sends and
import rows), each on its own axis (an import writes far more rows per minute than a channel
sends messages), drawn by templates/admin/operations/chart.html. No JavaScript, nothing fetched
from elsewhere."""

from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT = 940, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 72, 16, 36
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
Y_TICKS = 4


def nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above value (at least 4, so four ticks
    stay whole numbers)."""
    if value <= Y_TICKS:
        return Y_TICKS
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)


def compact(value: float) -> str:
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: str  # the polyline's "x,y x,y ..."
    peak: int
    total: int
    ticks: list[tuple[float, str]]  # (y, label) on this series' axis


def _series(name: str, color: str, values: list[int]) -> Series:
    top = nice_ceiling(max(values, default=0))
    step = PLOT_W / max(len(values) - 1, 1)
    points = " ".join(f"{LEFT + i * step:.1f},{TOP + PLOT_H * (1 - v / top):.1f}" for i, v in enumerate(values))
    ticks = [(TOP + PLOT_H * (1 - k / Y_TICKS), compact(top * k / Y_TICKS)) for k in range(Y_TICKS + 1)]
    return Series(name, color, points, max(values, default=0), sum(values), ticks)


def activity_chart(sends: list[int], import_rows: list[int], end: datetime) -> dict:
    """Geometry for the template: `end` is the (exclusive) end of the last minute plotted."""
    minutes = max(len(sends), 1)
    start = end - timedelta(minutes=minutes)
    x_ticks = []
    first = (start + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    hour = first
    while hour < end:
        if hour.hour % 3 == 0:
            offset = (hour - start).total_seconds() / 60
            x_ticks.append((LEFT + PLOT_W * offset / minutes, f"{hour:%H:%M}"))
        hour += timedelta(hours=1)
    send_series = _series("Messages sent per minute", "#417690", sends)
    import_series = _series("Import rows per minute", "#c7692b", import_rows)
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": LEFT + PLOT_W, "top": TOP, "bottom": TOP + PLOT_H,
        "label_y": HEIGHT - 4, "mid_y": TOP + PLOT_H / 2, "right_label_x": WIDTH - 8,
        "sends": send_series, "imports": import_series, "x_ticks": x_ticks,
        "empty": not send_series.total and not import_series.total,
        "start": start, "end": end,
    }
