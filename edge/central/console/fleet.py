"""The fleet page (GET /fleet) and a point's page (GET /points/{site}).

The fleet page shows every point (:func:`edge.central.console.facts.load_facts`) in the
order of what needs attention (:func:`attention_key`): points with open alerts first
(critical before warning), then points offline or silent while records wait, then by
the age of their oldest waiting record, then by site. Filters (province, state, a text
on site or name) and paging run over the sorted list in memory: one query for the
facts, one for the open alerts, whatever the filter, so the page costs the same for
every question and stays well under the 300 ms a 5,000-point fleet allows.

A point's page shows its facts, its alerts and its history (edge.central.console.
fleet_charts): backlog, link bytes per day against the budget, device faults per day.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from edge.central.alerts import detail_text, stored_detail
from edge.central.console.auth import Viewer, console_db
from edge.central.console.db import ConsoleDb
from edge.central.console.facts import FACTS_SQL, STREAMS, PointFacts, load_facts, point_facts
from edge.central.console.fleet_charts import (
    CAMERA_FAULTS,
    PRINTER_FAULTS,
    SCALE_FAULTS,
    history_charts,
    load_history,
)
from edge.central.console.pages import lang_of, render, strings, translate

router = APIRouter()

SILENT_AFTER_S = 3 * 3600
"""A point online by its retained status but not heard for this long is silent (the
station sends telemetry hourly by default: three missed in a row)."""
PAGE_SIZES = (100, 200, 500)
STATES = ("all", "attention", "offline", "online", "never")
SEVERITY_RANK = {"critical": 0, "warning": 1}


@dataclass(frozen=True)
class OpenAlert:
    site: str
    rule: str
    severity: str
    started_at: datetime
    detail: str


RANK_SQL = """
SELECT coalesce(s.site, p.site) AS site, p.name, p.province, p.district,
       s.status->>'state' AS state, s.last_seen, b.backlog, b.oldest
FROM sites s
FULL JOIN points p ON p.site = s.site
LEFT JOIN LATERAL (
    SELECT sum(CASE WHEN jsonb_typeof(v->'depth') = 'number'
                    THEN (v->>'depth')::numeric END)::bigint AS backlog,
           max(CASE WHEN jsonb_typeof(v->'oldest_age_s') = 'number'
                    THEN (v->>'oldest_age_s')::float8 END) AS oldest
    FROM jsonb_each(CASE WHEN jsonb_typeof(s.telemetry->'outbox') = 'object'
                         THEN s.telemetry->'outbox' ELSE '{}'::jsonb END) AS e(k, v)
    WHERE jsonb_typeof(v) = 'object') b ON true
"""
"""What the order and the filters need of every point, without reading its telemetry
into Python: backlog and oldest age are summed in PostgreSQL (the same fields
:func:`edge.central.console.facts.point_facts` reads)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A point as the fleet's order and filters see it."""

    site: str
    name: str | None
    province: str | None
    district: str | None
    online: bool | None  # the retained status says online (None: never said)
    last_seen: datetime | None
    backlog: int  # records waiting, all streams
    oldest_s: float | None  # the oldest waiting record's age
    alerts: tuple[OpenAlert, ...]
    silent: bool  # online by its status, but not heard for SILENT_AFTER_S

    @property
    def never_heard(self) -> bool:
        return self.last_seen is None and self.online is None

    @property
    def offline(self) -> bool:
        return self.online is False

    @property
    def stuck(self) -> bool:
        """Offline or silent while records wait to reach central."""
        return (self.offline or self.silent) and self.backlog > 0

    @property
    def attention(self) -> bool:
        return bool(self.alerts) or self.stuck


def attention_key(e: Entry) -> tuple[int, float, str]:
    """Sort key: open alerts (critical, then warning, then other), then offline or
    silent with backlog, then the oldest waiting record (oldest first), then site."""
    if e.alerts:
        group = min(SEVERITY_RANK.get(a.severity, 2) for a in e.alerts)
    elif e.stuck:
        group = 3
    else:
        group = 4
    return (group, -(e.oldest_s or 0.0), e.site)


@dataclass(frozen=True)
class FleetRow:
    """A point of the shown page: its entry, all its facts, what is wrong."""

    entry: Entry
    facts: PointFacts
    problems: tuple[str, ...]  # string keys of what is wrong, e.g. "fleet.p.printer"


def problems_of(f: PointFacts) -> tuple[str, ...]:
    """What the facts alone say is wrong (alert rules may say more)."""
    found = []
    if f.disk_low:
        found.append("fleet.p.disk_low")
    if f.paper == "out" or f.printer in PRINTER_FAULTS:
        found.append("fleet.p.printer")
    if f.scale in SCALE_FAULTS:
        found.append("fleet.p.scale")
    if f.camera in CAMERA_FAULTS:
        found.append("fleet.p.camera")
    if f.cpu_temp_c is not None and f.cpu_temp_c >= 80:
        found.append("fleet.p.hot")
    if f.epoch_conflicts or f.down_foreign_epoch:
        found.append("fleet.p.conflict")
    if f.refused or f.down_refused:
        found.append("fleet.p.refused")
    if f.clock_synced is False:
        found.append("fleet.p.clock")
    used = f.budget_used
    if used is not None and used >= 0.8:
        found.append("fleet.p.budget")
    return tuple(found)


def open_alerts(db: ConsoleDb) -> dict[str, list[OpenAlert]]:
    rows = db.rows(
        "SELECT site, rule, severity, started_at, detail FROM alerts "
        "WHERE ended_at IS NULL ORDER BY started_at"
    )
    out: dict[str, list[OpenAlert]] = {}
    for r in rows:
        out.setdefault(r["site"], []).append(OpenAlert(**r))
    return out


def fleet_entries(db: ConsoleDb, now: datetime) -> list[Entry]:
    """Every point, sorted by :func:`attention_key`."""
    alerts = open_alerts(db)
    silent_before = now - timedelta(seconds=SILENT_AFTER_S)
    entries = []
    for r in db.rows(RANK_SQL):
        state, seen = r["state"], r["last_seen"]
        online = None if state is None else state == "online"
        entries.append(
            Entry(
                site=r["site"],
                name=r["name"],
                province=r["province"],
                district=r["district"],
                online=online,
                last_seen=seen,
                backlog=int(r["backlog"] or 0),
                oldest_s=r["oldest"],
                alerts=tuple(alerts.get(r["site"], ())),
                silent=online is True and seen is not None and seen < silent_before,
            )
        )
    entries.sort(key=attention_key)
    return entries


def page_rows(db: ConsoleDb, entries: Sequence[Entry]) -> list[FleetRow]:
    """The full facts of the shown points, in the entries' order."""
    if not entries:
        return []
    rows = db.rows(
        FACTS_SQL + " WHERE coalesce(s.site, p.site) = ANY(%s)", ([e.site for e in entries],)
    )
    facts = {f.site: f for f in (point_facts(r) for r in rows)}
    return [
        FleetRow(e, facts[e.site], problems_of(facts[e.site])) for e in entries if e.site in facts
    ]


@dataclass(frozen=True)
class Summary:
    points: int
    online: int
    offline: int
    never: int
    alerting: int
    attention: int


def summarize(entries: Sequence[Entry]) -> Summary:
    return Summary(
        points=len(entries),
        online=sum(1 for e in entries if e.online is True),
        offline=sum(1 for e in entries if e.offline),
        never=sum(1 for e in entries if e.never_heard),
        alerting=sum(1 for e in entries if e.alerts),
        attention=sum(1 for e in entries if e.attention),
    )


def matches(e: Entry, province: str, state: str, words: Sequence[str]) -> bool:
    if province and e.province != province:
        return False
    if state == "attention" and not e.attention:
        return False
    if state == "offline" and not e.offline:
        return False
    if state == "online" and e.online is not True:
        return False
    if state == "never" and not e.never_heard:
        return False
    if words:
        hay = f"{e.site} {e.name or ''} {e.district or ''}".casefold()
        return all(word in hay for word in words)
    return True


def ago(when: datetime | None, now: datetime) -> str:
    """A short age: "45 s", "12 min", "5 h", "3 d" ("–" when unknown)."""
    if when is None:
        return "–"
    return age_text((now - when).total_seconds())


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def mb(value: int | None) -> str:
    if value is None:
        return "–"
    if value >= 10_000:
        return f"{value / 1024:.1f} GB".replace(".", ",")
    return f"{value} MB"


def megabytes(value: int | None) -> str:
    """Link bytes (10^6 bytes a MB, like the budget)."""
    return "–" if value is None else f"{value / 1e6:.1f} MB".replace(".", ",")


def _url(**params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in ("", None, "all", 1)}
    return "/fleet" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(
    request: Request,
    _who: Viewer,
    province: str = "",
    state: str = "all",
    q: str = Query("", max_length=100),
    page: int = Query(1, ge=1, le=10_000),
    per: int = 100,
) -> HTMLResponse:
    now = datetime.now(UTC)
    state = state if state in STATES else "all"
    per = per if per in PAGE_SIZES else PAGE_SIZES[0]
    db = console_db(request)
    entries = fleet_entries(db, now)
    provinces = Counter(e.province for e in entries if e.province)
    words = q.casefold().split()
    shown = [e for e in entries if matches(e, province, state, words)]
    pages = max(1, math.ceil(len(shown) / per))
    page = min(page, pages)
    first = (page - 1) * per

    def link(**change: Any) -> str:
        params: dict[str, Any] = {"province": province, "state": state, "q": q, "per": per}
        params |= change
        if params["per"] == PAGE_SIZES[0]:
            params["per"] = None
        return _url(**params)

    return render(
        request,
        "fleet.html",
        summary=summarize(entries),
        rows=page_rows(db, shown[first : first + per]),
        matching=len(shown),
        first=first,
        page=page,
        pages=pages,
        per=per,
        page_sizes=PAGE_SIZES,
        provinces=sorted(provinces.items(), key=lambda kv: kv[0]),
        province=province,
        state=state,
        states=STATES,
        q=q,
        link=link,
        now=now,
        ago=ago,
        age_text=age_text,
        mb=mb,
        streams=STREAMS,
        detail=_detail(request),
    )


def _detail(request: Request) -> Callable[[str], str]:
    """An alert's stored detail (edge.central.alerts) in the page's language."""
    lang = lang_of(request)

    def detail(text: str) -> str:
        try:
            return detail_text(stored_detail(text), lang)
        except (KeyError, IndexError, ValueError):  # values the text does not name
            return text

    return detail


@router.get("/points/{site}", response_class=HTMLResponse)
def point_page(request: Request, site: str, _who: Viewer) -> HTMLResponse:
    db = console_db(request)
    now = datetime.now(UTC)
    found = load_facts(db, site)
    if not found:
        return render(
            request, "message.html", status_code=404, title_key="fleet.unknown", key="fleet.unknown"
        )
    facts = found[0]
    alerts = db.rows(
        "SELECT rule, severity, started_at, ended_at, detail, value FROM alerts "
        "WHERE site = %s AND (ended_at IS NULL OR ended_at > %s) "
        "ORDER BY ended_at IS NULL DESC, started_at DESC LIMIT 100",
        (site, now - timedelta(days=30)),
    )
    entry = Entry(
        site=facts.site,
        name=facts.name,
        province=facts.province,
        district=facts.district,
        online=facts.online,
        last_seen=facts.last_seen,
        backlog=facts.backlog_total,
        oldest_s=facts.oldest_backlog_age_s,
        alerts=(),
        silent=facts.online is True
        and facts.last_seen is not None
        and facts.last_seen < now - timedelta(seconds=SILENT_AFTER_S),
    )
    row = FleetRow(entry, facts, problems_of(facts))
    history = load_history(db, site, now)
    lang = lang_of(request)
    texts = {
        "backlog": translate(lang, "chart.backlog"),
        "link": translate(lang, "chart.link"),
        "share": translate(lang, "chart.link_share"),
        "faults": translate(lang, "chart.faults"),
    }
    return render(
        request,
        "point.html",
        f=facts,
        row=row,
        alerts=alerts,
        charts=history_charts(history, now, texts),
        history=history,
        now=now,
        ago=ago,
        age_text=age_text,
        mb=mb,
        megabytes=megabytes,
        streams=STREAMS,
        detail=_detail(request),
    )


strings(
    {
        "fleet.title": ("Các điểm thu mua", "Fleet"),
        "fleet.points": ("Điểm", "Points"),
        "fleet.online": ("Trực tuyến", "Online"),
        "fleet.offline": ("Mất kết nối", "Offline"),
        "fleet.never": ("Chưa từng liên lạc", "Never heard"),
        "fleet.alerting": ("Có cảnh báo", "With open alerts"),
        "fleet.attention": ("Cần xử lý", "Needs attention"),
        "fleet.silent": ("Im lặng", "Silent"),
        "fleet.all": ("Tất cả", "All"),
        "fleet.province": ("Tỉnh", "Province"),
        "fleet.all_provinces": ("Mọi tỉnh", "All provinces"),
        "fleet.state": ("Trạng thái", "State"),
        "fleet.search": ("Tìm điểm (mã, tên)", "Find (site, name)"),
        "fleet.per_page": ("Mỗi trang", "Per page"),
        "fleet.filter": ("Lọc", "Filter"),
        "fleet.showing": (
            "{first}–{last} trong {matching} điểm phù hợp",
            "{first}–{last} of {matching} matching points",
        ),
        "fleet.none": ("Không có điểm nào phù hợp.", "No point matches."),
        "fleet.prev": ("‹ Trước", "‹ Previous"),
        "fleet.next": ("Sau ›", "Next ›"),
        "fleet.page": ("Trang {page}/{pages}", "Page {page} of {pages}"),
        "fleet.point": ("Điểm", "Point"),
        "fleet.seen": ("Liên lạc", "Last seen"),
        "fleet.backlog": ("Tồn đọng", "Backlog"),
        "fleet.oldest": ("cũ nhất", "oldest"),
        "fleet.synced": ("Đồng bộ", "Last sync"),
        "fleet.version": ("Phiên bản", "Version"),
        "fleet.disk": ("Đĩa trống", "Disk free"),
        "fleet.mem": ("RAM trống", "Memory free"),
        "fleet.cpu": ("CPU", "CPU"),
        "fleet.devices": ("Thiết bị", "Devices"),
        "fleet.clock": ("Đồng hồ", "Clock"),
        "fleet.conflicts": ("Xung đột", "Conflicts"),
        "fleet.refused": ("Bị từ chối", "Refused"),
        "fleet.alerts": ("Cảnh báo", "Alerts"),
        "fleet.scale": ("Cân", "Scale"),
        "fleet.printer": ("Máy in", "Printer"),
        "fleet.paper": ("giấy", "paper"),
        "fleet.camera": ("Camera", "Camera"),
        "fleet.clock_ok": ("đúng giờ", "synced"),
        "fleet.clock_bad": ("chưa đồng bộ", "not synced"),
        "fleet.epoch": ("kỷ nguyên", "epoch"),
        "fleet.down_epoch": ("kênh xuống", "downlink"),
        "fleet.up": ("lên", "up"),
        "fleet.down": ("xuống", "down"),
        "fleet.budget": ("Dung lượng tháng", "Month's data"),
        "fleet.unknown": ("Không có điểm này.", "No such point."),
        "fleet.p.disk_low": ("đĩa sắp đầy", "disk low"),
        "fleet.p.printer": ("máy in lỗi/hết giấy", "printer fault/paper out"),
        "fleet.p.scale": ("cân mất kết nối", "scale offline"),
        "fleet.p.camera": ("camera lỗi", "camera fault"),
        "fleet.p.hot": ("CPU nóng", "CPU hot"),
        "fleet.p.conflict": ("xung đột", "conflict"),
        "fleet.p.refused": ("bị từ chối", "refused"),
        "fleet.p.clock": ("sai giờ", "clock not synced"),
        "fleet.p.budget": ("gần hết dung lượng", "budget nearly spent"),
        "point.facts": ("Tình trạng hiện tại", "Now"),
        "point.district": ("Huyện", "District"),
        "point.status_at": ("Trạng thái từ", "Status since"),
        "point.telemetry_at": ("Số liệu lúc", "Telemetry at"),
        "point.config": ("Cấu hình", "Config"),
        "point.confirmed": ("Đã xác nhận tới", "Confirmed up to"),
        "point.downlink": ("Kênh xuống", "Downlink"),
        "point.alerts": ("Cảnh báo (30 ngày)", "Alerts (30 days)"),
        "point.no_alerts": ("Không có cảnh báo.", "No alerts."),
        "point.rule": ("Quy tắc", "Rule"),
        "point.severity": ("Mức", "Severity"),
        "point.started": ("Bắt đầu", "Started"),
        "point.ended": ("Kết thúc", "Ended"),
        "point.open": ("đang diễn ra", "open"),
        "point.history": ("Lịch sử 30 ngày", "Last 30 days"),
        "point.history_none": (
            "Chưa có số liệu trong 30 ngày qua.",
            "No telemetry in the last 30 days.",
        ),
        "point.records": ("{n} bản ghi số liệu", "{n} telemetry records"),
        "chart.backlog": ("Tồn đọng theo luồng", "Backlog per stream"),
        "chart.link": (
            "Dung lượng mỗi ngày so với hạn mức",
            "Link bytes per day against the budget",
        ),
        "chart.link_share": ("phần hạn mức mỗi ngày", "the budget's daily share"),
        "chart.link_month": (
            "Tháng {month}: {used} / {budget} ({pct})",
            "{month}: {used} of {budget} ({pct})",
        ),
        "chart.faults": (
            "Lỗi thiết bị (số lần báo lỗi mỗi ngày)",
            "Device faults (reports per day)",
        ),
        "chart.days": ("Ngày", "Days"),
    }
)
