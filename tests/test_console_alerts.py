"""Alert rules (edge/central/alerts.py) through central's PostgreSQL store: each rule fires
on the right facts and ends when they are right again (started_at and ended_at in the
``alerts`` table, one open row per site and rule, a rule firing again opens a new row),
the working-hours edge derived from now in the configured zone, the rules file refused
with its file, key and reason, the console's evaluator, and ``edge central alerts check``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.central.alerts import (
    AlertRules,
    AlertsConfigError,
    Firing,
    check_once,
    default_rules_path,
    evaluate,
    in_hours,
    load_rules,
    sync_alerts,
)
from edge.central.console.db import ConsoleDb
from edge.central.console.facts import PointFacts, load_facts
from edge.central.console.schema import ensure_schema
from edge.cli import main
from edge.ids import iso
from rigs.console_support import ConsoleServer
from rigs.helpers import wait_for
from tests.central_support import pg_schema

SITE = "sin-ho-01"
ZONE = "Asia/Ho_Chi_Minh"


@pytest.fixture
def db_url() -> Iterator[str]:
    with pg_schema() as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[ConsoleDb]:
    db = ConsoleDb(db_url).open()
    ensure_schema(db)
    try:
        yield db
    finally:
        db.close()


def month(now: datetime, rules: AlertRules | None = None) -> str:
    return now.astimezone((rules or AlertRules()).zone).strftime("%Y-%m")


def telemetry(now: datetime, **changes: Any) -> dict[str, Any]:
    """A healthy point's telemetry at ``now``, with ``changes``."""
    return {
        "type": "telemetry",
        "version": "1.4.0",
        "recorded_at": iso(now),
        "clock_synced": True,
        "disk_free_mb": 20_000,
        "disk_total_mb": 30_000,
        "disk_low": False,
        "mem_avail_mb": 600,
        "mem_total_mb": 1_000,
        "cpu_temp_c": 51.5,
        "outbox": {"records": {"depth": 0, "oldest_age_s": 0.0}},
        "devices": {
            "scale": {"status": "stable"},
            "printer": {"status": "ready", "paper": "ok"},
            "camera": {"status": "ok"},
        },
        "link": {"month": month(now), "bytes": 100_000_000, "budget_bytes": 1_000_000_000},
        "downlink": {"applied_upto": 0, "refused": 0, "foreign_epoch": False},
    } | changes


def put_point(
    db: ConsoleDb,
    site: str,
    tele: dict[str, Any],
    last_seen: datetime,
    *,
    conflict: bool = False,
) -> None:
    """The point as the ingest leaves it: its sites row (status, latest telemetry) and
    its records stream's progress (an epoch conflict when ``conflict``)."""
    status = json.dumps({"state": "online", "version": "1.4.0", "config_hash": "c0ffee"})
    db.execute(
        "INSERT INTO sites (site, last_seen, status, status_at, telemetry, telemetry_seq, "
        "telemetry_at) VALUES (%s, %s, %s, %s, %s, 1, %s) ON CONFLICT (site) DO UPDATE SET "
        "last_seen = excluded.last_seen, telemetry = excluded.telemetry, "
        "telemetry_at = excluded.telemetry_at",
        (site, last_seen, status, last_seen, json.dumps(tele), last_seen),
    )
    db.execute(
        "INSERT INTO progress (site, stream, contiguous_seq, highest_seq, records, last_seen, "
        "epoch, conflict_epoch, conflict_at) VALUES (%s, 'records', 10, 10, 10, %s, 'e1', "
        "%s, %s) ON CONFLICT (site, stream) DO UPDATE SET conflict_epoch = "
        "excluded.conflict_epoch, conflict_at = excluded.conflict_at",
        (site, last_seen, "e2" if conflict else None, last_seen if conflict else None),
    )


def alert_rows(db: ConsoleDb, site: str = SITE, rule: str | None = None) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT rule, severity, started_at, ended_at, detail, value FROM alerts "
        "WHERE site = %s AND (%s::text IS NULL OR rule = %s) ORDER BY id",
        (site, rule, rule),
    )


def firing_rules(db: ConsoleDb) -> set[str]:
    return {r["rule"] for r in alert_rows(db) if r["ended_at"] is None}


# rule -> (telemetry changes, last_seen before now, epoch conflict) that make it fire
BAD: dict[str, tuple[dict[str, Any], timedelta, bool]] = {
    "silent": (
        {"outbox": {"records": {"depth": 12, "oldest_age_s": 30_000.0}}},
        timedelta(hours=7),
        False,
    ),
    "paper_out": (
        {"devices": {"printer": {"status": "paper_out", "paper": "out"}}},
        timedelta(0),
        False,
    ),
    "disk_low": ({"disk_free_mb": 300}, timedelta(0), False),
    "conflict": ({}, timedelta(0), True),
    "link_budget": (
        {"link": {"bytes": 850_000_000, "budget_bytes": 1_000_000_000}},
        timedelta(0),
        False,
    ),
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_each_rule_fires_and_clears_through_the_database(db: ConsoleDb, rule: str) -> None:
    rules = AlertRules(working_hours="00:00-00:00")  # the scale rule has its own test
    t0 = datetime.now(UTC).replace(microsecond=0)
    put_point(db, SITE, telemetry(t0), t0)
    assert check_once(db, rules, t0).opened == 0
    assert alert_rows(db) == []

    changes, silent_for, conflict = BAD[rule]
    if rule == "link_budget":
        changes = {"link": changes["link"] | {"month": month(t0)}}
    t1 = t0 + timedelta(minutes=5)
    put_point(db, SITE, telemetry(t1, **changes), t1 - silent_for, conflict=conflict)
    check_once(db, rules, t1)
    assert firing_rules(db) == {rule}
    [row] = alert_rows(db)
    assert (row["started_at"], row["ended_at"]) == (t1, None)
    assert row["severity"] == rules.rule(rule).severity
    expected_value = {
        "silent": 7.0,
        "paper_out": None,
        "disk_low": 300.0,
        "conflict": 1.0,
        "link_budget": 0.85,
    }[rule]
    assert row["value"] == expected_value

    t2 = t1 + timedelta(minutes=1)  # still firing: the same row, started when it started
    put_point(db, SITE, telemetry(t2, **changes), t2 - silent_for, conflict=conflict)
    check_once(db, rules, t2)
    assert [(r["started_at"], r["ended_at"]) for r in alert_rows(db)] == [(t1, None)]

    t3 = t2 + timedelta(minutes=1)  # right again: ended now
    put_point(db, SITE, telemetry(t3), t3)
    assert check_once(db, rules, t3).ended == 1
    assert [(r["started_at"], r["ended_at"]) for r in alert_rows(db)] == [(t1, t3)]

    t4 = t3 + timedelta(minutes=1)  # firing again: a new row
    put_point(db, SITE, telemetry(t4, **changes), t4 - silent_for, conflict=conflict)
    check_once(db, rules, t4)
    assert [(r["started_at"], r["ended_at"]) for r in alert_rows(db)] == [(t1, t3), (t4, None)]
    assert db.scalar("SELECT count(*) FROM alerts WHERE ended_at IS NULL") == 1


def test_thresholds_edges_and_the_other_ways_each_rule_fires(db: ConsoleDb) -> None:
    rules = AlertRules(working_hours="00:00-00:00")
    now = datetime.now(UTC).replace(microsecond=0)
    waiting = {"outbox": {"records": {"depth": 3, "oldest_age_s": 1.0}}}
    cases: dict[str, tuple[dict[str, Any], timedelta, set[str]]] = {
        "quiet-5h-backlog": (waiting, timedelta(hours=5), set()),  # not yet 6 h
        "quiet-7h-empty": ({}, timedelta(hours=7), set()),  # nothing waiting: no alert
        "disk-station-says": ({"disk_low": True}, timedelta(0), {"disk_low"}),
        "disk-percent": ({"disk_free_mb": 1_200}, timedelta(0), {"disk_low"}),  # 4 % < 5 %
        "disk-fine": ({"disk_free_mb": 2_000}, timedelta(0), set()),  # 6.7 %, 2,000 MB
        "foreign-epoch": ({"downlink": {"foreign_epoch": True}}, timedelta(0), {"conflict"}),
        "ack-conflict": (
            {"outbox": {"records": {"depth": 0, "ack_conflict_upto": 99}}},
            timedelta(0),
            {"conflict"},
        ),
        "budget-80": (
            {"link": {"month": month(now), "bytes": 800_000_000, "budget_bytes": 10**9}},
            timedelta(0),
            set(),
        ),
        "budget-last-month": (
            {
                "link": {
                    "month": month(now - timedelta(days=40)),
                    "bytes": 9 * 10**8,
                    "budget_bytes": 10**9,
                }
            },
            timedelta(0),
            set(),
        ),
        "paper-near-end": (
            {"devices": {"printer": {"status": "ready", "paper": "near_end"}}},
            timedelta(0),
            set(),
        ),
    }
    for site, (changes, silent_for, _) in cases.items():
        put_point(db, site, telemetry(now, **changes), now - silent_for)
    check_once(db, rules, now)
    for site, (_, _, expected) in cases.items():
        got = {r["rule"] for r in alert_rows(db, site) if r["ended_at"] is None}
        assert got == expected, site
    [disk] = alert_rows(db, "disk-percent")
    assert json.loads(disk["detail"]) == [
        ["disk_free", {"free_mb": 1200, "total_mb": 30000, "percent": 4.0}]
    ]
    silent = evaluate(AlertRules.model_validate({"silent": {"hours": 4}}), load_facts(db), now)
    assert silent[("quiet-5h-backlog", "silent")].text("en") == (
        "Silent for 5.0 h with 3 records waiting"
    )
    assert silent[("quiet-5h-backlog", "silent")].text("vi") == (
        "Không liên lạc 5,0 giờ, còn 3 bản ghi chờ gửi"
    )
    off = AlertRules.model_validate(
        {"disk_low": {"enabled": False}, "conflict": {"enabled": False}}
    )
    assert evaluate(off, load_facts(db), now) == {}


def _local_rules(now: datetime, before: timedelta, after: timedelta) -> tuple[AlertRules, datetime]:
    """Working hours from ``now - before`` to ``now + after`` (local, whole minutes) and
    the instant they end."""
    local = now.astimezone(AlertRules().zone).replace(second=0, microsecond=0)
    start, end = local - before, local + after
    rules = AlertRules(timezone=ZONE, working_hours=f"{start:%H:%M}-{end:%H:%M}")
    return rules, end.astimezone(UTC)


def test_scale_offline_fires_only_in_working_hours(db: ConsoleDb) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rules, end = _local_rules(now, timedelta(hours=1), timedelta(hours=2))
    offline = {"devices": {"scale": {"status": "offline"}, "printer": {"status": "ready"}}}
    put_point(db, SITE, telemetry(now, **offline), now)
    check_once(db, rules, now)
    [row] = alert_rows(db, rule="scale_offline")
    assert (row["started_at"], row["ended_at"], row["severity"]) == (now, None, "warning")

    last_second = end - timedelta(seconds=1)  # the hours' last second: still open
    check_once(db, rules, last_second)
    assert [(r["started_at"], r["ended_at"]) for r in alert_rows(db)] == [(now, None)]
    check_once(db, rules, end)  # the end of the hours (excluded): it ends, scale still off
    assert [(r["started_at"], r["ended_at"]) for r in alert_rows(db)] == [(now, end)]
    later = end + timedelta(hours=3)
    check_once(db, rules, later)  # outside the hours it does not fire
    assert len(alert_rows(db)) == 1
    next_day = now + timedelta(days=1)  # the hours come round again: a new row
    check_once(db, rules, next_day)
    assert [(r["started_at"], r["ended_at"]) for r in alert_rows(db)] == [
        (now, end),
        (next_day, None),
    ]
    put_point(db, SITE, telemetry(next_day), next_day)  # the scale is back
    check_once(db, rules, next_day + timedelta(minutes=1))
    assert firing_rules(db) == set()


def test_working_hours_across_midnight_and_all_day() -> None:
    now = datetime.now(UTC)
    overnight, end = _local_rules(now, timedelta(hours=20), timedelta(hours=2))
    start, stop = overnight.working_hours.split("-")
    assert in_hours(overnight, now) and not in_hours(overnight, end)
    assert in_hours(overnight, end - timedelta(seconds=1))
    assert not in_hours(overnight, now + timedelta(hours=3))
    assert in_hours(AlertRules(working_hours=f"{start}-{start}"), now + timedelta(hours=3))
    assert stop != start


def test_sync_keeps_one_open_row_and_updates_its_detail(db: ConsoleDb) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    warn = Firing("warning", (("disk_free_mb", {"free_mb": 400}),), 400.0)
    lower = Firing("critical", (("disk_free_mb", {"free_mb": 100}),), 100.0)
    result = sync_alerts(db, {("a", "disk_low"): warn, ("b", "disk_low"): warn}, now)
    assert (result.opened, result.updated, result.ended) == (2, 0, 0)
    later = now + timedelta(minutes=1)
    result = sync_alerts(db, {("a", "disk_low"): lower}, later)
    assert (result.opened, result.updated, result.ended) == (0, 1, 1)
    [a] = alert_rows(db, "a")
    assert (a["severity"], a["value"], a["started_at"], a["ended_at"]) == (
        "critical",
        100.0,
        now,
        None,
    )
    [b] = alert_rows(db, "b")
    assert b["ended_at"] == later
    assert sync_alerts(db, {("a", "disk_low"): lower}, later) == type(result)(0, 0, 0)


def test_a_bad_rules_file_names_the_file_the_key_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[disk_low]\nfree_mbb = 100\nseverity = "loud"\n[silent]\nhours = -1\n')
    with pytest.raises(AlertsConfigError) as caught:
        load_rules(path)
    text = str(caught.value)
    assert f"{path}: disk_low.free_mbb: unknown key; did you mean 'free_mb'?" in text
    assert f"{path}: disk_low.severity: " in text and "'warning' or 'critical'" in text
    assert f"{path}: silent.hours: " in text and "greater than 0" in text
    path.write_text('working_hours = "6h-18h"\ntimezone = "Asia/Hanoi_City"\n[sms]\nto = 1\n')
    with pytest.raises(AlertsConfigError) as caught:
        load_rules(path)
    problems = dict(caught.value.problems)
    assert problems["working_hours"].startswith("working hours are HH:MM-HH:MM")
    assert "unknown time zone 'Asia/Hanoi_City'" in problems["timezone"]
    assert problems["sms"].startswith("unknown key")
    path.write_text("[silent\n")
    with pytest.raises(AlertsConfigError, match=r"\(syntax\): not valid TOML"):
        load_rules(path)


def test_the_shipped_rules_file_is_the_defaults_and_a_file_may_change_a_few(
    tmp_path: Path,
) -> None:
    assert default_rules_path().is_file()
    assert load_rules(None) == AlertRules()
    assert load_rules(None).enabled() == [
        "silent",
        "paper_out",
        "disk_low",
        "scale_offline",
        "conflict",
        "link_budget",
    ]
    path = tmp_path / "alerts.toml"
    path.write_text('working_hours = "07:00-17:30"\n[link_budget]\nfraction = 0.9\n'
                    '[paper_out]\nenabled = false\n')  # fmt: skip
    rules = load_rules(path)
    assert (rules.working_hours, rules.link_budget.fraction) == ("07:00-17:30", 0.9)
    assert "paper_out" not in rules.enabled() and rules.silent.hours == 6.0


def test_the_console_evaluates_periodically_and_a_bad_file_stops_serve(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ConsoleServer(db_url, alerts_every_s=0.2)
    now = datetime.now(UTC)
    put_point(server.db, SITE, telemetry(now, disk_low=True), now)
    with server as console:
        wait_for(lambda: firing_rules(console.db) == {"disk_low"}, 20, "the disk alert")
        put_point(console.db, SITE, telemetry(now), now)
        wait_for(lambda: firing_rules(console.db) == set(), 20, "the disk alert to end")
        [row] = alert_rows(console.db)
        assert row["ended_at"] is not None and row["ended_at"] > row["started_at"]
        assert console.app.state.alerts.last_error is None
    bad = tmp_path / "bad.toml"
    bad.write_text("[disk_low]\nfree = 1\n")
    assert main(["central", "serve", "--db", db_url, "--alerts", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: disk_low.free: unknown key" in err


def test_alerts_check_prints_what_fires(
    db_url: str, db: ConsoleDb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    db.execute(
        "INSERT INTO points (site, name, province, updated_at) VALUES (%s, %s, %s, now())",
        (SITE, "Điểm thu mua Sìn Hồ", "Lai Châu"),
    )
    put_point(db, SITE, telemetry(now, disk_free_mb=100), now, conflict=True)
    assert main(["central", "alerts", "check", "--db", db_url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(f["site"], f["rule"], f["severity"]) for f in out["firing"]] == [
        (SITE, "conflict", "critical"),
        (SITE, "disk_low", "warning"),
    ]
    assert out["firing"][1]["detail"] == "100 MB free of 30,000 MB (0.3 %)"
    assert out["firing"][1]["detail_vi"] == "Còn trống 100 MB / 30.000 MB (0,3 %)"
    assert out["firing"][1]["province"] == "Lai Châu"
    assert alert_rows(db) == []  # nothing written without --record
    rules = tmp_path / "alerts.toml"
    rules.write_text("[conflict]\nenabled = false\n")
    args = ["central", "alerts", "check", "--db", db_url, "--alerts", str(rules), "--record"]
    assert main(args) == 0
    assert capsys.readouterr().out.split("\t")[:3] == ["warning", SITE, "disk_low"]
    assert firing_rules(db) == {"disk_low"}
    rules.write_text("[conflict]\nenable = false\n")
    assert main(args) == 2
    assert "conflict.enable: unknown key; did you mean 'enabled'?" in capsys.readouterr().err


def test_facts_of_a_point_with_no_telemetry_fire_nothing() -> None:
    now = datetime.now(UTC)
    assert evaluate(AlertRules(), [PointFacts(site="new"), PointFacts(site="x")], now) == {}
