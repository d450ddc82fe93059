"""The fleet page and a point's page over a seeded fleet of 5,000 points with 30 days of
telemetry (rigs.fleet_seed, real PostgreSQL), and the points registry's CSV import.

The fleet's history here is one telemetry record every 6 hours (120 a point, 600,000 in
all, seeded in about 20 s) instead of the stations' hourly default (3.6 million, about
4 minutes): the suite runs twice side by side on two cores. The benchmark
(bench/console_fleet.py) seeds the full hourly history.
"""

from __future__ import annotations

import calendar
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from edge.central.console.db import ConsoleDb
from rigs.console_support import ConsoleServer
from rigs.fleet_seed import (
    KINDS,
    NO_ALERT_RULES,
    district_of,
    first_of,
    is_kind,
    point_name,
    province_of,
    seed_fleet,
    site_of,
)
from rigs.helpers import wait_for
from tests.central_support import pg_schema

POINTS, DAYS, PERIOD_H = 5000, 30, 6


@dataclass
class Fleet:
    console: ConsoleServer
    seeded_at: datetime


def plain(start: int) -> int:
    """The first point number from ``start`` of no special kind."""
    i = start
    while any(is_kind(i, kind) for kind in KINDS):
        i += 1
    return i


def add_alert(
    db: ConsoleDb, site: str, rule: str, severity: str, ago_h: float, ended: bool = False
) -> None:
    now = datetime.now(UTC)
    db.execute(
        "INSERT INTO alerts (site, rule, severity, started_at, ended_at, detail, value) "
        "VALUES (%s, %s, %s, %s, %s, %s, NULL)",
        (
            site,
            rule,
            severity,
            now - timedelta(hours=ago_h),
            now - timedelta(hours=ago_h / 2) if ended else None,
            '[["paper_out", {}]]',
        ),
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    rules = tmp_path_factory.mktemp("fleet") / "no-rules.toml"
    rules.write_text(NO_ALERT_RULES, encoding="utf-8")
    with pg_schema() as url:
        seeded_at = datetime.now(UTC)
        seed = seed_fleet(url, POINTS, DAYS, PERIOD_H, now=seeded_at)
        assert seed.records == sum(
            0 if is_kind(i, "never_heard") else 120 - (5 if is_kind(i, "offline") else 0)
            for i in range(POINTS)
        )
        with ConsoleServer(url, alerts_file=rules, alerts_every_s=3600) as console:
            # the evaluator's first run (no rule enabled) is over before alerts are added
            wait_for(lambda: console.app.state.alerts.runs >= 1, 30, "the first alert run")
            yield Fleet(console, seeded_at)


def sites_in(html: str) -> list[str]:
    return re.findall(r'data-testid="fleet-row" data-site="([^"]+)"', html)


def text_of(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', html, re.S)
    assert found, testid
    return re.sub(r"<[^>]+>", " ", found.group(1)).strip()


def count_of(html: str, testid: str) -> int:
    found = re.search(rf'data-testid="{testid}"><b>([\d.]+)</b>', html)
    assert found, testid
    return int(found.group(1).replace(".", ""))


def matching(html: str) -> int:
    found = re.search(r'data-matching="(\d+)"', html)
    return int(found.group(1)) if found else 0


def test_attention_order_counts_and_paging(fleet: Fleet) -> None:
    db = fleet.console.db
    critical, warning, ended = site_of(plain(4000)), site_of(plain(4100)), site_of(plain(1))
    add_alert(db, warning, "paper_out", "warning", 2)
    add_alert(db, critical, "silent", "critical", 1)
    add_alert(db, ended, "paper_out", "warning", 5, ended=True)
    try:
        with fleet.console.client("viewer") as c:
            page = c.get("/fleet")
            assert page.status_code == 200
            html = page.text
            offline = [i for i in range(POINTS) if is_kind(i, "offline")]
            never = [i for i in range(POINTS) if is_kind(i, "never_heard")]
            assert count_of(html, "count-points") == POINTS
            assert count_of(html, "count-offline") == len(offline) == 100
            assert count_of(html, "count-never") == len(never) == 20
            assert count_of(html, "count-online") == POINTS - 100 - 20
            assert count_of(html, "count-alerting") == 2
            assert db.scalar("SELECT count(*) FROM sites WHERE status->>'state' = 'online'") == (
                POINTS - 120
            )
            order = sites_in(html)
            assert len(order) == 100 and matching(html) == POINTS
            # open alerts first, critical before warning; an ended one counts for nothing
            assert order[:2] == [critical, warning]
            # then every offline point with records waiting, by the age of the oldest
            # (all offline points were silent as long: then by site)
            assert order[2:100] == [site_of(i) for i in offline[:98]]
            assert text_of(html, "page-of") == "Trang 1/50"
            second = c.get("/fleet", params={"page": 2}).text
            assert sites_in(second)[:2] == [site_of(i) for i in offline[98:]]
            # then points with records waiting (oldest first), healthy points last by site
            rest = sites_in(second)[2:]
            backlog_first = site_of(first_of("backlog", ("never_heard", "offline")))
            assert all(is_kind(int(site[3:]), "backlog") for site in rest)
            wide = c.get("/fleet", params={"per": 200, "page": 25}).text
            assert text_of(wide, "page-of") == "Trang 25/25"
            assert len(sites_in(wide)) == 200
            last = sites_in(wide)
            healthy = site_of(plain(4990))
            assert healthy in last
            assert ended not in order  # its alert ended: a healthy point, among the last
            everyone = []
            for n in range(1, 11):
                everyone += sites_in(c.get("/fleet", params={"per": 500, "page": n}).text)
            assert len(everyone) == len(set(everyone)) == POINTS
            position = {site: n for n, site in enumerate(everyone)}
            assert position[site_of(offline[-1])] < position[backlog_first] < position[healthy]
            # a page past the end shows the last one
            assert text_of(c.get("/fleet?page=999").text, "page-of") == "Trang 50/50"
    finally:
        db.execute("DELETE FROM alerts")


def test_province_state_and_text_filters(fleet: Fleet) -> None:
    with fleet.console.client("viewer") as c:
        province = province_of(123)
        in_province = [i for i in range(POINTS) if province_of(i) == province]
        html = c.get("/fleet", params={"province": province, "per": 200}).text
        assert matching(html) == len(in_province)
        assert set(sites_in(html)) == {site_of(i) for i in in_province}
        # the select offers every province present, with its count, and keeps the choice
        options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', html)
        provinces = {value for value, _sel, _text in options if value and "(" in _text}
        assert len(provinces) == 63 and province in provinces
        assert (province, " selected", f"{province} ({len(in_province)})") in options

        offline = c.get("/fleet", params={"state": "offline", "per": 200}).text
        assert matching(offline) == 100
        assert set(sites_in(offline)) == {
            site_of(i) for i in range(POINTS) if is_kind(i, "offline")
        }
        never = c.get("/fleet", params={"state": "never"}).text
        assert set(sites_in(never)) == {
            site_of(i) for i in range(POINTS) if is_kind(i, "never_heard")
        }
        online = c.get("/fleet", params={"state": "online", "province": province}).text
        assert matching(online) == sum(
            1 for i in in_province if not is_kind(i, "offline") and not is_kind(i, "never_heard")
        )
        attention = c.get("/fleet", params={"state": "attention", "per": 200}).text
        assert matching(attention) == 100  # no open alert: the offline points with backlog

        # the text filter: diacritics and case as typed, several words all present
        name = point_name(2)  # "Điểm thu mua Tả Van 1"
        assert "Tả Van" in name
        wanted = {
            site_of(i) for i in range(POINTS) if "Tả Van" in f"{point_name(i)} {district_of(i)}"
        }
        for typed in ("Tả Van", "tả van", "TẢ VAN"):
            shown: set[str] = set()
            for n in (1, 2):
                found = c.get("/fleet", params={"q": typed, "per": 500, "page": n}).text
                assert matching(found) == len(wanted) > 500, typed
                shown |= set(sites_in(found))
            assert shown == wanted, typed
        by_name = c.get("/fleet", params={"q": name.lower(), "per": 500}).text
        assert site_of(2) in sites_in(by_name)
        assert all("tả van" in f"{point_name(int(s[3:]))} {district_of(int(s[3:]))}".lower()
                   for s in sites_in(by_name))  # fmt: skip
        assert sites_in(c.get("/fleet", params={"q": "vn-04321"}).text) == ["vn-04321"]
        none = c.get("/fleet", params={"q": "không có điểm này"}).text
        assert "fleet-none" in none and not sites_in(none)
        # names with diacritics as stored, in Vietnamese, escaped
        assert f">{point_name(2)}</a>" in c.get("/fleet", params={"q": "vn-00002"}).text


def _history(db: ConsoleDb, site: str) -> list[dict[str, Any]]:
    rows = db.rows(
        "SELECT body FROM records WHERE site = %s AND stream = 'telemetry' "
        "AND received_at >= now() - interval '30 days' ORDER BY seq",
        (site,),
    )
    return [r["body"] for r in rows]


def _day(body: dict[str, Any]) -> date:
    return datetime.fromisoformat(body["recorded_at"].replace("Z", "+00:00")).date()


def _attrs(svg: str, tag: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r'([\w-]+)="([^"]*)"', m)) for m in re.findall(rf"<{tag} ([^>]*)>", svg)
    ]


def _svg(html: str, chart: str) -> str:
    found = re.search(rf'<svg class="chart" data-chart="{chart}".*?</svg>', html, re.S)
    assert found, chart
    return found.group(0)


def test_a_points_page_draws_its_history(fleet: Fleet) -> None:
    db = fleet.console.db
    i = first_of("paper_out", ("never_heard", "offline", "clock", "scale_offline"))
    site = site_of(i)
    add_alert(db, site, "paper_out", "warning", 3)
    add_alert(db, site, "paper_out", "warning", 50, ended=True)
    try:
        with fleet.console.client("viewer") as c:
            html = c.get(f"/points/{site}").text
    finally:
        db.execute("DELETE FROM alerts")
    bodies = _history(db, site)
    assert len(bodies) == 120
    assert f'<h1 data-testid="point-name">{point_name(i)}</h1>' in html
    assert province_of(i) in text_of(html, "point-place")
    assert len(re.findall(r'data-testid="point-alert"', html)) == 2
    assert len(re.findall(r'data-testid="point-alert" data-rule="paper_out" data-open', html)) == 1

    # backlog: one point per telemetry record and stream
    lines = {a["data-stream"]: a for a in _attrs(_svg(html, "backlog"), "polyline")}
    assert set(lines) == {"records", "telemetry", "bulk"}
    for line in lines.values():
        assert int(line["data-points"]) == len(line["points"].split()) == len(bodies)

    # device faults: per day, the records that said the paper is out
    expected: dict[str, int] = {}
    for body in bodies:
        if body["devices"]["printer"]["paper"] == "out":
            expected[_day(body).isoformat()] = expected.get(_day(body).isoformat(), 0) + 1
    assert len(expected) >= 20  # every 30 hours, and now
    rects = _attrs(_svg(html, "faults"), "rect")
    assert {r["data-day"]: int(r["data-count"]) for r in rects} == expected
    assert {r["data-device"] for r in rects} == {"printer"}

    # link bytes per day: the increase of the month's count from the day before
    last: dict[date, tuple[str, int]] = {}
    for body in bodies:
        last[_day(body)] = (body["link"]["month"], body["link"]["bytes"])
    days = sorted(last)
    per_day = {}
    for before, day in pairwise(days):
        month, count = last[day]
        per_day[day.isoformat()] = count - last[before][1] if last[before][0] == month else count
    if days[0].day == 1:
        per_day[days[0].isoformat()] = last[days[0]][1]
    bars = _attrs(_svg(html, "link"), "rect")
    assert {b["data-day"]: int(b["data-bytes"]) for b in bars} == per_day
    assert len(bars) in (len(days) - 1, len(days))
    budget_lines = _attrs(_svg(html, "link"), 'line class="budget"')
    months = {m for m, _b in last.values()}
    shares = {}
    for month in months:
        year, mon = (int(p) for p in month.split("-"))
        shares[month] = round(100_000_000 / calendar.monthrange(year, mon)[1])
    assert {b["data-month"]: int(b["data-share"]) for b in budget_lines} == shares


def test_unknown_point_is_a_404_page_and_a_silent_point_shows_its_backlog(fleet: Fleet) -> None:
    with fleet.console.client("viewer") as c:
        r = c.get("/points/vn-99999")
        assert r.status_code == 404
        assert "Không có điểm này." in r.text
        i = first_of("offline")
        html = c.get(f"/points/{site_of(i)}").text
        assert "Mất kết nối" in text_of(html, "point-state")
        assert "records 328 (cũ nhất 24 h)" in text_of(html, "point-backlog")
        never = c.get(f"/points/{site_of(first_of('never_heard', ()))}")
        assert never.status_code == 200
        assert "0 bản ghi số liệu" in text_of(never.text, "point-history-count")


def _edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120
    )


def test_points_import_reports_bad_rows_and_updates(tmp_path: Path) -> None:
    csv_file = tmp_path / "điểm.csv"
    csv_file.write_bytes(
        "\ufeffsite,name,province,district\r\n"
        "lc-bac-ha-01,Điểm thu mua Bắc Hà,Lào Cai,Bắc Hà\r\n"
        "Lào Cai 2,Điểm sai mã,Lào Cai,\r\n"
        'lc-sa-pa-02,"Hợp tác xã chè Tả Van, Sa Pa",Lào Cai,Sa Pa\r\n'
        "hg-dong-van-01,,Hà Giang,Đồng Văn\r\n"
        "\r\n"
        "lc-bac-ha-01,Trùng mã,Lào Cai,\r\n"
        "sl-moc-chau-01,Điểm thu mua Mộc Châu,,\r\n"
        "sl-moc-chau-02,Điểm Mộc Châu 2,Sơn La,Mộc Châu,thừa\r\n"
        "sl-yen-chau-01,Điểm thu mua Yên Châu,Sơn La\r\n".encode()
    )
    with pg_schema() as url:
        done = _edge("central", "points", "import", str(csv_file), "--db", url)
        assert done.returncode == 1, done.stderr
        assert done.stdout.strip() == "3 points stored (3 new, 0 updated), 5 rows refused"
        errors = done.stderr.strip().splitlines()
        assert [line.split(": ")[1] for line in errors] == [
            "row 3",
            "row 5",
            "row 7",
            "row 8",
            "row 9",
        ]
        assert "site 'Lào Cai 2' is not a station id" in errors[0]
        assert errors[1].endswith("name is empty")
        assert errors[2].endswith("site lc-bac-ha-01 is already on row 2")
        assert errors[3].endswith("province is empty")
        assert errors[4].endswith("5 cells, the header has 4")
        listed = _edge("central", "points", "list", "--db", url)
        assert listed.returncode == 0
        assert listed.stdout.splitlines() == [
            "lc-bac-ha-01\tLào Cai\tBắc Hà\tĐiểm thu mua Bắc Hà",
            "lc-sa-pa-02\tLào Cai\tSa Pa\tHợp tác xã chè Tả Van, Sa Pa",
            "sl-yen-chau-01\tSơn La\t\tĐiểm thu mua Yên Châu",
        ]
        # again, without the BOM and with a name changed: updated, nothing refused
        again = tmp_path / "again.csv"
        again.write_text(
            "site,name,province,district\nlc-bac-ha-01,Điểm Bắc Hà (mới),Lào Cai,Bắc Hà\n",
            encoding="utf-8",
        )
        done = _edge("central", "points", "import", str(again), "--db", url)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.strip() == "1 points stored (0 new, 1 updated), 0 rows refused"
        db = ConsoleDb(url).open()
        try:
            assert db.scalar("SELECT name FROM points WHERE site = 'lc-bac-ha-01'") == (
                "Điểm Bắc Hà (mới)"
            )
            assert db.scalar("SELECT count(*) FROM points") == 3
        finally:
            db.close()
        # a file that is not UTF-8, or lacks a column, is refused whole
        latin = tmp_path / "latin.csv"
        latin.write_bytes(b"site,name,province\nx-1,\xd0i\xeam,L\xe0o Cai\n")  # Windows-1258
        bad = _edge("central", "points", "import", str(latin), "--db", url)
        assert bad.returncode == 2 and "not UTF-8" in bad.stderr
        header = tmp_path / "header.csv"
        header.write_text("site,ten,province\n", encoding="utf-8")
        bad = _edge("central", "points", "import", str(header), "--db", url)
        assert bad.returncode == 2
        assert "missing column(s) name; unknown column(s) ten" in bad.stderr
        example = Path(__file__).parent.parent / "docs" / "points-example.csv"
        done = _edge("central", "points", "import", str(example), "--db", url)
        assert done.returncode == 0, done.stderr
