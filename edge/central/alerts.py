"""Alert rules over the points' facts: the rules file (TOML, validated), the pure
:func:`evaluate`, the history in the ``alerts`` table (:func:`sync_alerts`), the console's
periodic evaluator, and ``edge central alerts check``.

A rule is a section of the rules file named after it (``[disk_low]``); each has
``enabled`` and ``severity`` (``warning`` or ``critical``) and its own thresholds. The
file's top level gives the working hours and their time zone (for ``scale_offline``).
Missing keys take the defaults of the file shipped in the package
(``edge/central/alerts_default.toml``); an unknown key or a bad value is an error naming
the file, the key and the reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.central.console.db import ConsoleDb
from edge.central.console.facts import PointFacts, load_facts
from edge.tomlfile import known_zone, read_toml, unknown_key

log = logging.getLogger("edge.central.alerts")

DEFAULT_FILE = "alerts_default.toml"
SYNC_LOCK_KEY = 0x0A1E575  # pg_advisory_xact_lock: one history writer at a time

Severity = Literal["warning", "critical"]

# rule -> (Vietnamese, English): what the rule watches, in words
RULE_WORDS: dict[str, tuple[str, str]] = {
    "silent": ("Điểm im lặng khi còn dữ liệu chờ gửi", "Point silent with records waiting"),
    "paper_out": ("Máy in hết giấy", "Printer out of paper"),
    "disk_low": ("Sắp hết dung lượng đĩa", "Disk low"),
    "scale_offline": ("Cân mất kết nối trong giờ làm việc", "Scale offline in working hours"),
    "conflict": ("Xung đột xác nhận hoặc epoch", "Ack or epoch conflict"),
    "link_budget": ("Dung lượng mạng gần hết hạn mức tháng", "Link budget nearly used"),
}

# detail part -> (Vietnamese, English), formatted with the firing's values
DETAIL_TEXTS: dict[str, tuple[str, str]] = {
    "silent": (
        "không liên lạc {hours} giờ, còn {backlog} bản ghi chờ gửi",
        "silent for {hours} h with {backlog} records waiting",
    ),
    "paper_out": ("máy in báo hết giấy", "the printer reports no paper"),
    "disk_station": ("trạm báo đĩa sắp đầy", "the station reports its disk low"),
    "disk_free": (
        "còn trống {free_mb} MB / {total_mb} MB ({percent} %)",
        "{free_mb} MB free of {total_mb} MB ({percent} %)",
    ),
    "disk_free_mb": ("còn trống {free_mb} MB", "{free_mb} MB free"),
    "scale_offline": (
        "cân mất kết nối trong giờ làm việc ({hours})",
        "the scale is offline during working hours ({hours})",
    ),
    "epoch_conflict": (
        "{streams} luồng có epoch xung đột (cơ sở dữ liệu của trạm đã đổi)",
        "{streams} stream(s) with an epoch conflict (the station's database changed)",
    ),
    "foreign_epoch": (
        "điểm từ chối epoch downlink của trung tâm",
        "the point refuses central's downlink epoch",
    ),
    "ack_conflict": (
        "trung tâm xác nhận quá số thứ tự của trạm (trùng mã điểm?)",
        "central acknowledged beyond the station's seq (a shared site id?)",
    ),
    "link_budget": (
        "đã dùng {percent} % hạn mức tháng {month} ({used_mb} / {budget_mb} MB)",
        "{percent} % of the {month} budget used ({used_mb} / {budget_mb} MB)",
    ),
}


# -- the rules file ---------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    enabled: bool = Field(True, description="false: the rule never fires")
    severity: Severity = Field("warning", description="warning or critical")


class SilentRule(Rule):
    severity: Severity = "critical"
    hours: float = Field(6.0, gt=0, le=24 * 60, description="silent longer than this")


class DiskLowRule(Rule):
    free_mb: int = Field(500, ge=0, description="free below this many MB (0: not checked)")
    free_percent: float = Field(5.0, ge=0, le=100, description="free below this % (0: off)")


class ConflictRule(Rule):
    severity: Severity = "critical"


class LinkBudgetRule(Rule):
    fraction: float = Field(0.8, gt=0, le=10, description="this month's bytes over the budget")


class AlertRules(_Strict):
    timezone: str = Field("Asia/Ho_Chi_Minh", description="zone of the working hours")
    working_hours: str = Field("06:00-18:00", description="HH:MM-HH:MM, local time")
    silent: SilentRule = SilentRule()
    paper_out: Rule = Rule()
    disk_low: DiskLowRule = DiskLowRule()
    scale_offline: Rule = Rule()
    conflict: ConflictRule = ConflictRule()
    link_budget: LinkBudgetRule = LinkBudgetRule()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def rule(self, name: str) -> Rule:
        found = getattr(self, name)
        assert isinstance(found, Rule)
        return found

    def enabled(self) -> list[str]:
        return [name for name in RULE_WORDS if self.rule(name).enabled]


def parse_hours(text: str) -> tuple[time, time]:
    """ "06:00-18:00" -> (06:00, 18:00); the end is excluded; an end before the start
    runs past midnight; equal ends: all day."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError("working hours are HH:MM-HH:MM, e.g. '06:00-18:00'") from None
    return start, end


def in_hours(rules: AlertRules, now: datetime) -> bool:
    start, end = parse_hours(rules.working_hours)
    local = now.astimezone(rules.zone).time().replace(tzinfo=None)
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end


class AlertsConfigError(ValueError):
    """A rules file that cannot be used; ``problems`` are (key, reason) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {key}: {reason}" for key, reason in problems))


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            model: type[BaseModel] = AlertRules
            if len(loc) > 1:
                annotation = AlertRules.model_fields[loc[0]].annotation
                assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
                model = annotation
            reason = unknown_key(loc[-1], list(model.model_fields))
        elif err["type"] == "missing":
            reason = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            reason = f"{msg} (got {err.get('input')!r})"
        problems.append((".".join(loc) or "(top level)", reason))
    return problems


def parse_rules(data: Mapping[str, Any], file: str = "<rules>") -> AlertRules:
    try:
        return AlertRules.model_validate(data)
    except ValidationError as exc:
        raise AlertsConfigError(file, _describe(exc)) from None


def default_rules_path() -> Path:
    return Path(str(files("edge.central") / DEFAULT_FILE))


def load_rules(path: Path | None = None) -> AlertRules:
    """The rules of ``path`` (None: the file shipped in the package)."""
    path = default_rules_path() if path is None else path
    return parse_rules(read_toml(path, AlertsConfigError), str(path))


# -- evaluation (pure) ------------------------------------------------------------------

Part = tuple[str, Mapping[str, Any]]


def _number(value: Any, lang: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    if lang == "en":
        return text
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def detail_text(parts: Iterable[Part], lang: str = "en") -> str:
    """The detail in ``lang`` ("vi" or "en"), its parts joined by "; "."""
    index = 0 if lang == "vi" else 1
    out = []
    for key, values in parts:
        texts = DETAIL_TEXTS.get(key)
        if texts is None:
            out.append(key)
            continue
        out.append(texts[index].format(**{k: _number(v, lang) for k, v in values.items()}))
    text = "; ".join(out)
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Firing:
    severity: str
    detail: tuple[Part, ...]  # (text key, values) parts: see DETAIL_TEXTS
    value: float | None = None  # the measured value the rule compared (hours, MB, ...)

    def text(self, lang: str = "en") -> str:
        return detail_text(self.detail, lang)

    def detail_json(self) -> str:
        """How the ``alerts`` table keeps the detail (rendered in each reader's language)."""
        return json.dumps([[key, dict(values)] for key, values in self.detail], ensure_ascii=False)


def stored_detail(text: str) -> tuple[Part, ...]:
    """:meth:`Firing.detail_json` read back; any other text is one part of its own."""
    try:
        data = json.loads(text)
        return tuple((str(key), dict(values)) for key, values in data)
    except (ValueError, TypeError):
        return ((text, {}),)


def _silent(rule: SilentRule, p: PointFacts, now: datetime) -> Firing | None:
    if p.last_seen is None or p.backlog_total <= 0:
        return None
    hours = (now - p.last_seen).total_seconds() / 3600
    if hours <= rule.hours:
        return None
    values = {"hours": round(hours, 1), "backlog": p.backlog_total}
    return Firing(rule.severity, (("silent", values),), round(hours, 2))


def _paper(rule: Rule, p: PointFacts) -> Firing | None:
    if p.paper != "out" and p.printer != "paper_out":
        return None
    return Firing(rule.severity, (("paper_out", {}),), None)


def _disk(rule: DiskLowRule, p: PointFacts) -> Firing | None:
    free, total = p.disk_free_mb, p.disk_total_mb
    percent = 100 * free / total if free is not None and total else None
    low_mb = free is not None and rule.free_mb > 0 and free < rule.free_mb
    low_pc = percent is not None and rule.free_percent > 0 and percent < rule.free_percent
    if not (p.disk_low or low_mb or low_pc):
        return None
    parts: list[Part] = []
    if p.disk_low:
        parts.append(("disk_station", {}))
    if free is not None and total and percent is not None:
        parts.append(("disk_free", {"free_mb": free, "total_mb": total, "percent": percent}))
    elif free is not None:
        parts.append(("disk_free_mb", {"free_mb": free}))
    return Firing(rule.severity, tuple(parts), None if free is None else float(free))


def _scale(rules: AlertRules, p: PointFacts, now: datetime) -> Firing | None:
    if p.scale != "offline" or not in_hours(rules, now):
        return None
    return Firing(
        rules.scale_offline.severity, (("scale_offline", {"hours": rules.working_hours}),)
    )


def _conflict(rule: ConflictRule, p: PointFacts) -> Firing | None:
    parts: list[Part] = []
    if p.epoch_conflicts > 0:
        parts.append(("epoch_conflict", {"streams": p.epoch_conflicts}))
    if p.down_foreign_epoch:
        parts.append(("foreign_epoch", {}))
    if p.ack_conflict:
        parts.append(("ack_conflict", {}))
    if not parts:
        return None
    return Firing(rule.severity, tuple(parts), float(p.epoch_conflicts))


def _budget(rules: AlertRules, p: PointFacts, now: datetime) -> Firing | None:
    used = p.budget_used
    if used is None or used <= rules.link_budget.fraction or p.link_budget_bytes is None:
        return None
    if p.link_month is not None and p.link_month != now.astimezone(rules.zone).strftime("%Y-%m"):
        return None  # last month's figure (a point silent since then): not this budget
    values = {
        "percent": round(100 * used, 1),
        "month": p.link_month or "?",
        "used_mb": round((p.link_bytes or 0) / 1_000_000, 1),
        "budget_mb": round(p.link_budget_bytes / 1_000_000, 1),
    }
    return Firing(rules.link_budget.severity, (("link_budget", values),), round(used, 4))


def point_firing(rules: AlertRules, p: PointFacts, now: datetime) -> dict[str, Firing]:
    """rule -> firing, for one point's facts."""
    found = {
        "silent": _silent(rules.silent, p, now),
        "paper_out": _paper(rules.paper_out, p),
        "disk_low": _disk(rules.disk_low, p),
        "scale_offline": _scale(rules, p, now),
        "conflict": _conflict(rules.conflict, p),
        "link_budget": _budget(rules, p, now),
    }
    return {rule: f for rule, f in found.items() if f is not None and rules.rule(rule).enabled}


def evaluate(
    rules: AlertRules, facts: Iterable[PointFacts], now: datetime
) -> dict[tuple[str, str], Firing]:
    """(site, rule) -> firing for every enabled rule that fires on the facts at ``now``."""
    out: dict[tuple[str, str], Firing] = {}
    for p in facts:
        for rule, firing in point_firing(rules, p, now).items():
            out[(p.site, rule)] = firing
    return out


# -- history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    opened: int = 0
    updated: int = 0
    ended: int = 0


def sync_alerts(
    db: ConsoleDb, firing: Mapping[tuple[str, str], Firing], now: datetime
) -> SyncResult:
    """One transaction: a row (started_at = now) for each new firing, detail, value and
    severity brought up to date on open ones, ended_at = now on open ones no longer
    firing. At most one open row per (site, rule) (the table's unique index)."""
    with db.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK_KEY,))
        rows = conn.execute(
            "SELECT id, site, rule, severity, detail, value FROM alerts WHERE ended_at IS NULL"
        ).fetchall()
        open_rows = {(r["site"], r["rule"]): r for r in rows}
        ended = [r["id"] for key, r in open_rows.items() if key not in firing]
        new = [(key, f) for key, f in firing.items() if key not in open_rows]
        changed = []
        for key, f in firing.items():
            row = open_rows.get(key)
            current = (f.severity, f.detail_json(), f.value)
            if row is not None and (row["severity"], row["detail"], row["value"]) != current:
                changed.append((row["id"], *current))
        if ended:
            conn.execute("UPDATE alerts SET ended_at = %s WHERE id = ANY(%s)", (now, ended))
        if new:
            conn.execute(
                "INSERT INTO alerts (site, rule, severity, started_at, detail, value) "
                "SELECT s, r, v, %s, d, x FROM unnest("
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::float8[]) AS u(s, r, v, d, x)",
                (
                    now,
                    [k[0] for k, _ in new],
                    [k[1] for k, _ in new],
                    [f.severity for _, f in new],
                    [f.detail_json() for _, f in new],
                    [f.value for _, f in new],
                ),
            )
        if changed:
            conn.execute(
                "UPDATE alerts a SET severity = u.v, detail = u.d, value = u.x FROM unnest("
                "%s::bigint[], %s::text[], %s::text[], %s::float8[]) AS u(i, v, d, x) "
                "WHERE a.id = u.i",
                tuple(list(col) for col in zip(*changed, strict=True)),
            )
    return SyncResult(len(new), len(changed), len(ended))


def check_once(db: ConsoleDb, rules: AlertRules, now: datetime | None = None) -> SyncResult:
    """Evaluate the rules over every point's facts now and record the history."""
    now = now or datetime.now(UTC)
    return sync_alerts(db, evaluate(rules, load_facts(db), now), now)


@dataclass
class AlertEvaluator:
    """The console's evaluator: :func:`check_once` at start and every ``every_s`` in a
    daemon thread until :meth:`stop`. ``runs`` counts finished evaluations."""

    db: ConsoleDb
    rules: AlertRules
    every_s: float
    runs: int = 0
    last_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AlertEvaluator:
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = check_once(self.db, self.rules)
                self.last_error = None
                if result.opened or result.ended:
                    log.info("alerts: %d opened, %d ended", result.opened, result.ended)
            except Exception as exc:  # the database away: try again next period
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alerts: evaluation failed: %s", self.last_error)
            self.runs += 1
            self._stop.wait(self.every_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def open_alerts(db: ConsoleDb) -> list[dict[str, Any]]:
    """The open alerts (site, rule, severity, started_at, detail, value, and the point's
    name and province when registered), oldest first."""
    return db.rows(
        "SELECT a.site, a.rule, a.severity, a.started_at, a.detail, a.value, p.name, "
        "p.province FROM alerts a LEFT JOIN points p ON p.site = a.site "
        "WHERE a.ended_at IS NULL ORDER BY a.started_at, a.site, a.rule"
    )


# -- edge central alerts check ----------------------------------------------------------


def cmd_alerts_check(args: argparse.Namespace) -> int:
    from edge.central.console.db import ConsoleDbError
    from edge.central.console.schema import ensure_schema
    from edge.central.store import StoreError

    try:
        rules = load_rules(args.alerts)
    except AlertsConfigError as exc:
        print(f"edge central alerts check: {exc}", file=sys.stderr)
        return 2
    try:
        db = ConsoleDb(args.db).open()
    except ConsoleDbError as exc:
        print(f"edge central alerts check: {exc}", file=sys.stderr)
        return 1
    try:
        ensure_schema(db)
        now = datetime.now(UTC)
        facts = load_facts(db)
        firing = evaluate(rules, facts, now)
        if args.record:
            sync_alerts(db, firing, now)
    except (ConsoleDbError, StoreError) as exc:
        print(f"edge central alerts check: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    names = {p.site: (p.name, p.province) for p in facts}
    ordered = sorted(firing.items(), key=lambda kv: (kv[1].severity != "critical", kv[0]))
    if args.json:
        out = [
            {
                "site": site,
                "name": names.get(site, (None, None))[0],
                "province": names.get(site, (None, None))[1],
                "rule": rule,
                "severity": f.severity,
                "detail": f.text("en"),
                "detail_vi": f.text("vi"),
                "value": f.value,
            }
            for (site, rule), f in ordered
        ]
        print(json.dumps({"at": now.isoformat(), "firing": out}, ensure_ascii=False, indent=1))
    else:
        for (site, rule), f in ordered:
            print(f"{f.severity}\t{site}\t{rule}\t{f.text('en')}")
        print(f"{len(firing)} firing over {len(facts)} points", file=sys.stderr)
    return 0


def add_alert_commands(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = csub.add_parser(
        "alerts",
        help="alert rules over the points' facts (docs/console.md)",
        description="Evaluate the console's alert rules.",
    )
    asub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="COMMAND")
    check = asub.add_parser(
        "check",
        help="evaluate the rules once and print what fires",
        description="Evaluate the alert rules over every point's facts now and print what "
        "fires (critical first): severity, site, rule, detail. Nothing is written unless "
        "--record (then the console's alert history is brought up to date, as the "
        "console's evaluator does).",
    )
    check.add_argument("--db", required=True, help="central's PostgreSQL database")
    check.add_argument("--alerts", type=Path, help="rules file (TOML); default: the shipped one")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument("--record", action="store_true", help="also update the alert history")
    check.set_defaults(func=cmd_alerts_check)
