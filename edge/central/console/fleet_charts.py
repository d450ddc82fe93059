"""A point's history over the last 30 days, from its telemetry records, as three inline
SVG charts made on the server (no script, no library): backlog per stream, link bytes
per day against the monthly budget, device faults per day.

History: ``records`` rows of stream ``telemetry`` of one site, received in the last 30
days, at most :data:`MAX_ROWS` (newest kept), read by the primary key (site, stream,
seq). A sample's time is the station's ``recorded_at`` when its clock was synchronised,
else when central received it. Days are UTC days, like the station's budget month.

Link bytes per day: telemetry's ``link.bytes`` counts the month so far (out plus in);
a day's bytes are the increase of its last count over the previous day's last count
(the whole count on a month's first day heard). The window's first day has no previous
count, so it has no bar unless a month starts on it. The dashed line is the budget's
daily share (budget / days in the month).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from markupsafe import Markup

from edge.central.console.db import ConsoleDb
from edge.central.console.facts import STREAMS
from edge.ids import parse_iso

DAYS = 30
MAX_ROWS = 6000
"""30 days of telemetry every 10 minutes is 4,320; hourly (the default) is 720."""
SCALE_FAULTS = frozenset({"offline", "error"})
PRINTER_FAULTS = frozenset({"offline", "paper_out", "cover_open", "error"})
CAMERA_FAULTS = frozenset({"no_device", "error", "offline"})
DEVICES = ("scale", "printer", "camera")

W, H = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 62, 8, 22, 26
LEGEND_Y = 13
COLORS = {
    "records": "#12355b",
    "telemetry": "#8e24aa",
    "bulk": "#e08a00",
    "scale": "#b3261e",
    "printer": "#e08a00",
    "camera": "#5f6368",
}


@dataclass(frozen=True)
class Sample:
    at: datetime
    backlog: dict[str, int] = field(default_factory=dict)
    link_month: str | None = None
    link_bytes: int | None = None
    budget_bytes: int | None = None
    faults: frozenset[str] = frozenset()


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def device_faults(devices: object) -> frozenset[str]:
    """The devices a telemetry ``devices`` field reports as faulty."""
    if not isinstance(devices, Mapping):
        return frozenset()
    found = set()
    for name, bad in (
        ("scale", SCALE_FAULTS),
        ("printer", PRINTER_FAULTS),
        ("camera", CAMERA_FAULTS),
    ):
        state = devices.get(name)
        if not isinstance(state, Mapping):
            continue
        if state.get("status") in bad or (name == "printer" and state.get("paper") == "out"):
            found.add(name)
    return frozenset(found)


def sample_of(body: Mapping[str, Any], received_at: datetime) -> Sample:
    """One telemetry record as a sample. Pure."""
    at = received_at
    if body.get("clock_synced") is True and isinstance(body.get("recorded_at"), str):
        with suppress(ValueError):
            at = parse_iso(body["recorded_at"])
    outbox = body.get("outbox") if isinstance(body.get("outbox"), Mapping) else {}
    assert isinstance(outbox, Mapping)
    backlog = {}
    for stream, value in outbox.items():
        depth = _int(value.get("depth")) if isinstance(value, Mapping) else None
        if depth is not None:
            backlog[str(stream)] = depth
    link = body.get("link") if isinstance(body.get("link"), Mapping) else {}
    assert isinstance(link, Mapping)
    return Sample(
        at=at,
        backlog=backlog,
        link_month=link["month"] if isinstance(link.get("month"), str) else None,
        link_bytes=_int(link.get("bytes")),
        budget_bytes=_int(link.get("budget_bytes")),
        faults=device_faults(body.get("devices")),
    )


def load_history(db: ConsoleDb, site: str, now: datetime, days: int = DAYS) -> list[Sample]:
    """The site's telemetry of the last ``days`` days (at most :data:`MAX_ROWS`), oldest
    first."""
    rows = db.rows(
        "SELECT received_at, body FROM records WHERE site = %s AND stream = 'telemetry' "
        "AND received_at >= %s ORDER BY seq DESC LIMIT %s",
        (site, now - timedelta(days=days), MAX_ROWS),
    )
    samples = [sample_of(r["body"], r["received_at"]) for r in rows if isinstance(r["body"], dict)]
    samples.sort(key=lambda s: s.at)
    return samples


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def link_per_day(samples: Sequence[Sample]) -> list[tuple[date, int, str]]:
    """(day, bytes that day, month) for every day whose increase is known."""
    last: dict[date, Sample] = {}
    for s in samples:
        if s.link_bytes is not None and s.link_month is not None:
            last[_day(s.at)] = s  # samples are oldest first: the day's last wins
    out = []
    previous: Sample | None = None
    for day in sorted(last):
        s = last[day]
        assert s.link_bytes is not None and s.link_month is not None
        if previous is not None and previous.link_month == s.link_month:
            assert previous.link_bytes is not None
            out.append((day, max(0, s.link_bytes - previous.link_bytes), s.link_month))
        elif previous is not None or day.day == 1:
            out.append((day, s.link_bytes, s.link_month))  # the month starts at zero
        previous = s
    return out


def faults_per_day(samples: Iterable[Sample]) -> dict[date, dict[str, int]]:
    """Per UTC day, per device: how many telemetry records reported it faulty."""
    out: dict[date, dict[str, int]] = {}
    for s in samples:
        for device in s.faults:
            day = out.setdefault(_day(s.at), {})
            day[device] = day.get(device, 0) + 1
    return out


def daily_share(month: str, budget: int) -> float:
    year, mon = (int(p) for p in month.split("-"))
    return budget / calendar.monthrange(year, mon)[1]


# -- drawing ---------------------------------------------------------------------------------


class Frame:
    """Maps time (the window) and a value range onto the chart's box."""

    def __init__(self, start: datetime, end: datetime, top: float) -> None:
        self.start, self.end = start, end
        self.top = top if top > 0 else 1.0

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        frac = (at - self.start).total_seconds() / span
        return LEFT + max(0.0, min(1.0, frac)) * (W - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return TOP + (1 - max(0.0, min(1.0, value / self.top))) * (H - TOP - BOTTOM)

    @property
    def day_w(self) -> float:
        return (W - LEFT - RIGHT) / max(1.0, (self.end - self.start).total_seconds() / 86400)


def _num(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f} MB".replace(".", ",")
    if value >= 1e4:
        return f"{value / 1e3:.0f} kB"
    return f"{value:.0f}"


def _axes(frame: Frame, top_label: str, days: Sequence[date]) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{escape(top_label)}</text>',
        f'<text x="{LEFT - 4}" y="{H - BOTTOM}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        if i % 5:
            continue
        at = datetime(day.year, day.month, day.day, tzinfo=UTC)
        x = frame.x(at)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}"/>')
        parts.append(f'<text x="{x:.1f}" y="{H - 8}">{day.day:02d}/{day.month:02d}</text>')
    return parts


def _svg(name: str, title: str, parts: Iterable[str], **data: object) -> Markup:
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in data.items())
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" data-chart="{name}"{attrs} viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _window_days(start: datetime, end: datetime) -> list[date]:
    first, last = _day(start), _day(end)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def backlog_chart(samples: Sequence[Sample], start: datetime, end: datetime, title: str) -> Markup:
    top = max((max(s.backlog.values(), default=0) for s in samples), default=0)
    frame = Frame(start, end, max(1, top))
    parts = _axes(frame, _num(frame.top), _window_days(start, end))
    for n, stream in enumerate(STREAMS):
        points = [
            f"{frame.x(s.at):.1f},{frame.y(s.backlog[stream]):.1f}"
            for s in samples
            if stream in s.backlog
        ]
        color = COLORS[stream]
        parts.append(
            f'<polyline class="series" data-stream="{stream}" data-points="{len(points)}" '
            f'fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(points)}"/>'
        )
        parts.append(f'<text x="{LEFT + 8 + n * 90}" y="{LEGEND_Y}" fill="{color}">{stream}</text>')
    return _svg("backlog", title, parts, samples=len(samples), top=top)


def link_chart(
    samples: Sequence[Sample], start: datetime, end: datetime, title: str, share_label: str
) -> Markup:
    bars = link_per_day(samples)
    budgets = {s.link_month: s.budget_bytes for s in samples if s.link_month and s.budget_bytes}
    shares = {m: daily_share(m, b) for m, b in budgets.items() if b}
    top = max([b for _d, b, _m in bars] + [v * 1.25 for v in shares.values()] + [1])
    frame = Frame(start, end, top)
    parts = _axes(frame, _num(top), _window_days(start, end))
    width = max(1.0, frame.day_w * 0.8)
    for day, value, month in bars:
        x = frame.x(datetime(day.year, day.month, day.day, tzinfo=UTC)) + frame.day_w * 0.1
        y = frame.y(value)
        over = month in shares and value > shares[month]
        parts.append(
            f'<rect class="bar{" over" if over else ""}" data-day="{day.isoformat()}" '
            f'data-bytes="{value}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{H - BOTTOM - y:.1f}" fill="{"#b3261e" if over else "#12355b"}">'
            f"<title>{day.isoformat()}: {_num(value)}</title></rect>"
        )
    for month, share in sorted(shares.items()):
        year, mon = (int(p) for p in month.split("-"))
        m_start = max(start, datetime(year, mon, 1, tzinfo=UTC))
        nxt = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
        m_end = min(end, nxt)
        if m_end <= m_start:
            continue
        y = frame.y(share)
        parts.append(
            f'<line class="budget" data-month="{month}" data-share="{share:.0f}" '
            f'x1="{frame.x(m_start):.1f}" y1="{y:.1f}" x2="{frame.x(m_end):.1f}" y2="{y:.1f}" '
            f'stroke="#a15c00" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
    if shares:
        parts.append(
            f'<text x="{W - RIGHT - 4}" y="{LEGEND_Y}" text-anchor="end" fill="#a15c00">'
            f"--- {escape(share_label)}</text>"
        )
    return _svg("link", title, parts, bars=len(bars))


def faults_chart(samples: Sequence[Sample], start: datetime, end: datetime, title: str) -> Markup:
    per_day = faults_per_day(samples)
    top = max((sum(d.values()) for d in per_day.values()), default=0)
    frame = Frame(start, end, max(1, top))
    parts = _axes(frame, _num(frame.top), _window_days(start, end))
    width = max(1.0, frame.day_w * 0.8)
    rects = 0
    for day in sorted(per_day):
        x = frame.x(datetime(day.year, day.month, day.day, tzinfo=UTC)) + frame.day_w * 0.1
        base = 0
        for device in DEVICES:
            n = per_day[day].get(device, 0)
            if not n:
                continue
            y_top, y_base = frame.y(base + n), frame.y(base)
            parts.append(
                f'<rect class="fault" data-day="{day.isoformat()}" data-device="{device}" '
                f'data-count="{n}" x="{x:.1f}" y="{y_top:.1f}" width="{width:.1f}" '
                f'height="{y_base - y_top:.1f}" fill="{COLORS[device]}">'
                f"<title>{day.isoformat()} {device}: {n}</title></rect>"
            )
            base += n
            rects += 1
    for n, device in enumerate(DEVICES):
        parts.append(
            f'<text x="{LEFT + 8 + n * 80}" y="{LEGEND_Y}" fill="{COLORS[device]}">{device}</text>'
        )
    return _svg("faults", title, parts, days=len(per_day), rects=rects)


@dataclass(frozen=True)
class Charts:
    backlog: Markup
    link: Markup
    faults: Markup


def history_charts(
    samples: Sequence[Sample], now: datetime, texts: Mapping[str, str] | None = None
) -> Charts:
    t = texts or {}
    start = now - timedelta(days=DAYS)
    return Charts(
        backlog=backlog_chart(samples, start, now, t.get("backlog", "backlog")),
        link=link_chart(
            samples, start, now, t.get("link", "link bytes per day"), t.get("share", "budget/day")
        ),
        faults=faults_chart(samples, start, now, t.get("faults", "device faults")),
    )
