"""GET /metrics (edge/central/metrics.py) on a real console over PostgreSQL: the text
format parses with prometheus_client's own parser and its values are the seeded facts
in base units; anonymous and wrong-token requests get 401, the token and an operator's
session get in (also for /api/alerts); 5,000 points in one scrape; and every metric the
Grafana dashboard (deploy/grafana/edge-fleet.json) asks for is one the console exports."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from edge.central.alerts import check_once
from edge.central.console.auth import COOKIE
from edge.central.console.db import ConsoleDb
from edge.central.console.operators import sign_in
from rigs.console_support import PASSWORD, ConsoleServer
from rigs.helpers import wait_for
from tests.central_support import pg_schema
from tests.test_console_alerts import month, put_point, telemetry

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "edge-fleet.json"
TOKEN = "prom-7f3a9c1e5b2d4f60a8e1"
MIB = 1024 * 1024


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleServer]:
    token = tmp_path / "metrics.token"
    token.write_text(TOKEN + "\n")
    with (
        pg_schema() as url,
        ConsoleServer(url, metrics_token_file=token, alerts_every_s=3600) as server,
    ):
        wait_for(lambda: server.app.state.alerts.runs >= 1, 20, "the first alert evaluation")
        yield server


def seed(console: ConsoleServer, now: datetime) -> None:
    """sin-ho-01 (Lai Châu) with trouble of every kind, tam-duong-02 healthy but offline
    and not registered by name; the alert history brought up to date."""
    db = console.db
    db.execute(
        "INSERT INTO points (site, name, province, updated_at) VALUES (%s, %s, %s, now())",
        ("sin-ho-01", "Điểm thu mua Sìn Hồ", "Lai Châu"),
    )
    bad = telemetry(
        now,
        disk_free_mb=300,
        cpu_temp_c=61.5,
        clock_synced=False,
        outbox={
            "records": {"depth": 12, "oldest_age_s": 3600.5},
            "bulk": {"depth": 2, "oldest_age_s": 10.0},
        },
        devices={
            "scale": {"status": "offline"},
            "printer": {"status": "ready", "paper": "out"},
            "camera": {"status": "ok"},
        },
        link={"month": month(now), "bytes": 850_000_000, "budget_bytes": 1_000_000_000},
    )
    put_point(db, "sin-ho-01", bad, now - timedelta(hours=7), conflict=True)
    db.execute(
        "INSERT INTO refused (site, stream, first_seq, last_seq, epoch, reason, seq, detail, "
        "times, first_at, last_at) VALUES ('sin-ho-01', 'records', 5, 6, 'e1', "
        "'invalid_record', 5, 'x', 3, %s, %s)",
        (now, now),
    )
    put_point(db, "tam-duong-02", telemetry(now), now)
    db.execute(
        "UPDATE sites SET status = jsonb_set(status, '{state}', '\"offline\"') "
        "WHERE site = 'tam-duong-02'"
    )
    rules = console.app.state.alert_rules
    check_once(db, rules.model_copy(update={"working_hours": "00:00-00:00"}), now)


def scrape(console: ConsoleServer, **headers: str) -> httpx.Response:
    with console.client(role=None) as c:
        return c.get("/metrics", headers=headers)


def viewer_client(console: ConsoleServer) -> httpx.Client:
    """A signed-in viewer's client, its session made without POST /signin (whose limit
    of 10 a minute per address is shared by every console the test process runs)."""
    token = sign_in(console.db, console.operator("viewer"), PASSWORD)
    return httpx.Client(
        base_url=console.url, headers={"Origin": console.url}, cookies={COOKIE: token}, timeout=30
    )


def samples(text: str) -> dict[str, list[Sample]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(found: dict[str, list[Sample]], metric: str, /, **labels: str) -> float:
    [match] = [s for s in found[metric] if all(s.labels.get(k) == v for k, v in labels.items())]
    return float(match.value)


def test_metrics_parse_and_carry_the_seeded_facts(console: ConsoleServer) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seed(console, now)
    r = scrape(console, Authorization=f"Bearer {TOKEN}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    found = samples(r.text)
    a = {"site": "sin-ho-01", "province": "Lai Châu"}
    b = {"site": "tam-duong-02", "province": ""}
    assert value(found, "edge_point_online", **a) == 1.0
    assert value(found, "edge_point_online", **b) == 0.0
    last_seen = (now - timedelta(hours=7)).timestamp()
    assert value(found, "edge_point_last_seen_timestamp_seconds", **a) == last_seen
    assert value(found, "edge_point_disk_free_bytes", **a) == 300 * MIB
    assert value(found, "edge_point_disk_total_bytes", **a) == 30_000 * MIB
    assert value(found, "edge_point_memory_available_bytes", **a) == 600 * MIB
    assert value(found, "edge_point_cpu_temperature_celsius", **a) == 61.5
    assert value(found, "edge_point_clock_synced", **a) == 0.0
    assert value(found, "edge_point_clock_synced", **b) == 1.0
    assert value(found, "edge_point_backlog_records", **a, stream="records") == 12.0
    assert value(found, "edge_point_backlog_records", **a, stream="bulk") == 2.0
    assert value(found, "edge_point_oldest_backlog_age_seconds", **a, stream="records") == 3600.5
    assert value(found, "edge_point_device_ok", **a, device="scale") == 0.0
    assert value(found, "edge_point_device_ok", **a, device="printer") == 0.0  # no paper
    assert value(found, "edge_point_device_ok", **a, device="camera") == 1.0
    assert value(found, "edge_point_device_ok", **b, device="printer") == 1.0
    assert value(found, "edge_point_link_month_bytes", **a) == 850_000_000
    assert value(found, "edge_point_link_budget_bytes", **a) == 1_000_000_000
    assert value(found, "edge_point_epoch_conflicts", **a) == 1.0
    assert value(found, "edge_point_epoch_conflicts", **b) == 0.0
    assert value(found, "edge_point_refused_batches", **a) == 3.0
    info = {"name": "Điểm thu mua Sìn Hồ", "version": "1.4.0", "config_hash": "c0ffee"}
    assert value(found, "edge_point_info", **a, **info) == 1.0
    active = {(s.labels["rule"], s.labels["severity"]) for s in found["edge_alert_active"]}
    assert active == {
        ("silent", "critical"),
        ("paper_out", "warning"),
        ("disk_low", "warning"),
        ("scale_offline", "warning"),
        ("conflict", "critical"),
        ("link_budget", "warning"),
    }
    assert {s.labels["site"] for s in found["edge_alert_active"]} == {"sin-ho-01"}
    assert value(found, "edge_alerts_open", rule="disk_low", severity="warning") == 1.0
    assert value(found, "edge_alerts_open", rule="silent", severity="critical") == 1.0
    assert len(found["edge_alerts_open"]) == 6


def test_anonymous_and_wrong_tokens_get_401_the_token_and_operators_get_in(
    console: ConsoleServer,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seed(console, now)
    assert scrape(console).status_code == 401
    assert scrape(console, Authorization="Bearer wrong-token").status_code == 401
    assert scrape(console, Authorization=f"Bearer {TOKEN}x").status_code == 401
    assert scrape(console, Authorization=f"Basic {TOKEN}").status_code == 401
    with console.client(role=None) as anon:
        assert anon.get("/api/alerts").status_code == 401
        assert anon.get("/api/alerts", headers={"Authorization": "Bearer no"}).status_code == 401
        r = anon.get("/api/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
    body = r.json()
    assert {a["rule"] for a in body["open"]} >= {"disk_low", "conflict"}
    disk = next(a for a in body["open"] if a["rule"] == "disk_low")
    assert disk["site"] == "sin-ho-01" and disk["province"] == "Lai Châu"
    assert disk["name"] == "Điểm thu mua Sìn Hồ" and disk["ended_at"] is None
    assert disk["detail"] == "300 MB free of 30,000 MB (1.0 %)"
    assert disk["detail_vi"] == "Còn trống 300 MB / 30.000 MB (1,0 %)"
    assert datetime.fromisoformat(disk["started_at"]) == now
    assert body["ended"] == []
    with viewer_client(console) as viewer:
        assert viewer.get("/metrics").status_code == 200
        only = viewer.get("/api/alerts", params={"rule": "conflict"}).json()
        assert [a["rule"] for a in only["open"]] == ["conflict"]
        assert viewer.get("/api/alerts", params={"province": "Điện Biên"}).json()["open"] == []


def test_without_a_token_file_a_bearer_token_never_gets_in() -> None:
    with pg_schema() as url, ConsoleServer(url) as console:
        assert scrape(console, Authorization="Bearer x").status_code == 401
        assert scrape(console, Authorization="Bearer anything").status_code == 401
        with viewer_client(console) as viewer:
            assert viewer.get("/metrics").status_code == 200


def test_five_thousand_points_in_one_scrape(console: ConsoleServer) -> None:
    now = datetime.now(UTC)
    tele = json.dumps(telemetry(now))
    console.db.execute(
        "INSERT INTO sites (site, last_seen, status, status_at, telemetry, telemetry_seq, "
        "telemetry_at) SELECT 'p-' || lpad(i::text, 4, '0'), %s, "
        """'{"state": "online", "version": "1.4.0", "config_hash": "ab"}'::jsonb, %s, """
        "jsonb_set(%s::jsonb, '{disk_free_mb}', to_jsonb(i)), 1, %s "
        "FROM generate_series(1, 5000) i",
        (now, now, tele, now),
    )
    console.db.execute(
        "INSERT INTO points (site, name, province, updated_at) SELECT 'p-' || lpad(i::text, "
        "4, '0'), 'Điểm ' || i, CASE WHEN i %% 2 = 0 THEN 'Lai Châu' ELSE 'Sơn La' END, now() "
        "FROM generate_series(1, 5000) i"
    )
    db: ConsoleDb = console.app.state.db
    queries: list[str] = []
    rows = db.rows

    def counted(sql: str, params: Any = ()) -> list[dict[str, Any]]:
        queries.append(sql)
        return rows(sql, params)

    setattr(db, "rows", counted)  # noqa: B010  (count what one scrape asks the database)
    started = time.monotonic()
    r = scrape(console, Authorization=f"Bearer {TOKEN}")
    took = time.monotonic() - started
    assert r.status_code == 200
    assert len(queries) == 2  # every point's facts in one query, the open alerts in one
    assert "FULL JOIN points" in queries[0] and "FROM alerts" in queries[1]
    found = samples(r.text)
    assert len(found["edge_point_online"]) == 5000
    assert value(found, "edge_point_disk_free_bytes", site="p-1234") == 1234 * MIB
    assert value(found, "edge_point_online", site="p-0007", province="Sơn La") == 1.0
    print(f"/metrics with 5,000 points: {took * 1000:.0f} ms, {len(r.content)} bytes")
    assert took < 30, took  # a bound against runaway work, not a benchmark (loaded machine)


def _dashboard_metrics() -> tuple[dict[str, Any], set[str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            used = set(re.findall(r"\bedge_[a-z_]+\b", target["expr"]))
            assert used, (panel["title"], target["expr"])
            assert "$province" in target["expr"], (panel["title"], target["expr"])
            names |= used
    return dashboard, names


def test_the_grafana_dashboard_reads_only_metrics_the_console_exports(
    console: ConsoleServer,
) -> None:
    seed(console, datetime.now(UTC).replace(microsecond=0))
    exported = set(samples(scrape(console, Authorization=f"Bearer {TOKEN}").text))
    dashboard, used = _dashboard_metrics()
    assert used <= exported, used - exported
    assert len(used) >= 12
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["province"]["definition"] == "label_values(edge_point_info, province)"
    titles = " / ".join(p["title"] for p in dashboard["panels"])
    for words in ("online", "offline", "alerts by rule", "Backlog", "Oldest", "Disk free"):
        assert words in titles
    for words in ("CPU temperature", "Link budget", "Refused"):
        assert words in titles
