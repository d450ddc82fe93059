"""GET /alerts (the page: open alerts first, then those ended in the last 7 days, with
filters by rule and province) and GET /api/alerts (the same as JSON for other tools; an
operator's session or the metrics bearer token). The alerts are opened and ended by the
console's evaluator (edge/central/alerts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from edge.central.alerts import RULE_WORDS, AlertRules, detail_text, stored_detail
from edge.central.console.auth import Viewer, console_db
from edge.central.console.db import ConsoleDb
from edge.central.console.metrics_view import Reader
from edge.central.console.pages import lang_of, render, strings

router = APIRouter()

ENDED_DAYS = 7
LIMIT = 1000  # rows per section on the page (the counts say how many there are)

strings({f"alerts.rule.{rule}": words for rule, words in RULE_WORDS.items()})
strings(
    {
        "alerts.title": ("Cảnh báo", "Alerts"),
        "alerts.open": ("Đang mở", "Open"),
        "alerts.ended": ("Đã kết thúc ({days} ngày qua)", "Ended (last {days} days)"),
        "alerts.none_open": ("Không có cảnh báo nào đang mở.", "No open alert."),
        "alerts.none_ended": ("Không có cảnh báo nào đã kết thúc.", "No ended alert."),
        "alerts.point": ("Điểm", "Point"),
        "alerts.province": ("Tỉnh", "Province"),
        "alerts.rule": ("Quy tắc", "Rule"),
        "alerts.severity": ("Mức độ", "Severity"),
        "alerts.since": ("Từ lúc", "Since"),
        "alerts.started": ("Bắt đầu", "Started"),
        "alerts.ended_at": ("Kết thúc", "Ended"),
        "alerts.duration": ("Kéo dài", "Lasted"),
        "alerts.detail": ("Chi tiết", "Detail"),
        "alerts.all": ("Tất cả", "All"),
        "alerts.filter": ("Lọc", "Filter"),
        "alerts.critical": ("Nghiêm trọng", "Critical"),
        "alerts.warning": ("Cảnh báo", "Warning"),
        "alerts.shown": ("hiện {shown} / {total}", "showing {shown} of {total}"),
        "alerts.zone": ("Giờ theo {zone}", "Times in {zone}"),
        "alerts.eval_error": (
            "Lần đánh giá cảnh báo gần nhất bị lỗi: {error}",
            "The last alert evaluation failed: {error}",
        ),
    }
)

SELECT = """
SELECT a.site, a.rule, a.severity, a.started_at, a.ended_at, a.detail, a.value,
       p.name, p.province
FROM alerts a LEFT JOIN points p ON p.site = a.site
WHERE {state}
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s)
  AND (%(province)s::text IS NULL OR p.province = %(province)s)
"""
OPEN = SELECT.format(state="a.ended_at IS NULL")
ENDED = SELECT.format(state="a.ended_at >= %(since)s")
OPEN_ORDER = " ORDER BY a.severity = 'critical' DESC, a.started_at DESC, a.site, a.rule"
ENDED_ORDER = " ORDER BY a.ended_at DESC, a.site, a.rule"


def alert_rows(
    db: ConsoleDb,
    *,
    rule: str | None,
    province: str | None,
    since: datetime,
    limit: int | None = LIMIT,
) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]], int]:
    """(open rows, how many open, ended rows, how many ended) under the filters."""
    params = {"rule": rule, "province": province, "since": since}
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    open_rows = db.rows(OPEN + OPEN_ORDER + tail, params)
    ended_rows = db.rows(ENDED + ENDED_ORDER + tail, params)
    n_open = len(open_rows)
    n_ended = len(ended_rows)
    if limit is not None and n_open == limit:
        n_open = int(db.scalar(f"SELECT count(*) FROM ({OPEN}) x", params))
    if limit is not None and n_ended == limit:
        n_ended = int(db.scalar(f"SELECT count(*) FROM ({ENDED}) x", params))
    return open_rows, n_open, ended_rows, n_ended


def _duration(seconds: float, lang: str) -> str:
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    d, h, m = ("ngày", "giờ", "phút") if lang == "vi" else ("d", "h", "min")
    if days:
        return f"{days} {d} {hours} {h}"
    if hours:
        return f"{hours} {h} {mins} {m}"
    return f"{mins} {m}"


def _view(row: dict[str, Any], zone: ZoneInfo, lang: str, now: datetime) -> dict[str, Any]:
    started: datetime = row["started_at"]
    ended: datetime | None = row["ended_at"]
    return {
        "site": row["site"],
        "name": row["name"],
        "province": row["province"],
        "rule": row["rule"],
        "severity": row["severity"],
        "started": started.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "started_iso": started.isoformat(),
        "ended": ended.astimezone(zone).strftime("%Y-%m-%d %H:%M") if ended else None,
        "ended_iso": ended.isoformat() if ended else None,
        "duration": _duration(((ended or now) - started).total_seconds(), lang),
        "detail": detail_text(stored_detail(row["detail"]), lang),
    }


def _filter(value: str | None) -> str | None:
    return value.strip() or None if value else None


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    _who: Viewer,
    rule: Annotated[str | None, Query(max_length=40)] = None,
    province: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    db = console_db(request)
    rules: AlertRules = request.app.state.alert_rules
    lang = lang_of(request)
    now = datetime.now(UTC)
    rule, province = _filter(rule), _filter(province)
    since = now - timedelta(days=ENDED_DAYS)
    open_rows, n_open, ended_rows, n_ended = alert_rows(
        db, rule=rule, province=province, since=since
    )
    provinces = [r["province"] for r in db.rows("SELECT DISTINCT province FROM points ORDER BY 1")]
    evaluator = getattr(request.app.state, "alerts", None)
    return render(
        request,
        "alerts.html",
        open=[_view(r, rules.zone, lang, now) for r in open_rows],
        ended=[_view(r, rules.zone, lang, now) for r in ended_rows],
        n_open=n_open,
        n_ended=n_ended,
        days=ENDED_DAYS,
        rules=list(RULE_WORDS),
        provinces=provinces,
        rule=rule,
        province=province,
        zone=rules.timezone,
        eval_error=getattr(evaluator, "last_error", None),
    )


def _json(row: dict[str, Any]) -> dict[str, Any]:
    parts = stored_detail(row["detail"])
    ended: datetime | None = row["ended_at"]
    return {
        "site": row["site"],
        "name": row["name"],
        "province": row["province"],
        "rule": row["rule"],
        "rule_text": RULE_WORDS.get(row["rule"], (row["rule"], row["rule"]))[1],
        "severity": row["severity"],
        "started_at": row["started_at"].isoformat(),
        "ended_at": ended.isoformat() if ended else None,
        "detail": detail_text(parts, "en"),
        "detail_vi": detail_text(parts, "vi"),
        "value": row["value"],
    }


@router.get("/api/alerts")
def alerts_api(
    request: Request,
    _who: Reader,
    rule: Annotated[str | None, Query(max_length=40)] = None,
    province: Annotated[str | None, Query(max_length=100)] = None,
    days: Annotated[int, Query(ge=0, le=90)] = ENDED_DAYS,
) -> JSONResponse:
    """Open alerts and those ended in the last ``days`` days (every one, no limit)."""
    now = datetime.now(UTC)
    open_rows, _, ended_rows, _ = alert_rows(
        console_db(request),
        rule=_filter(rule),
        province=_filter(province),
        since=now - timedelta(days=days),
        limit=None,
    )
    return JSONResponse(
        {
            "at": now.isoformat(),
            "open": [_json(r) for r in open_rows],
            "ended": [_json(r) for r in ended_rows],
        }
    )
