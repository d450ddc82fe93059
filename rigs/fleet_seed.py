"""A fleet for the console's tests and benchmark: N points in central's PostgreSQL store,
with names and provinces, their retained status, their latest telemetry and D days of
telemetry history, generated inside PostgreSQL (``INSERT ... SELECT`` over
``generate_series``, the JSON built in SQL), so 5,000 points x 30 days hourly
(3.6 million records) takes about a minute, not an hour of Python.

The mix is fixed by a point's number ``i`` (0-based; site ``vn-00000``), so a test can
name the point it checks (:func:`site_of`, :data:`KINDS`):

=================  =========================================================================
``never_heard``    ``i % 250 == 17``: registered, never heard (no ``sites`` row, no telemetry)
``offline``        ``i % 50 == 7``: retained status offline, silent for the last 30 hours,
                   with a growing backlog of records
``backlog``        ``i % 20 == 3``: online with records waiting (depth and age vary)
``paper_out``      ``i % 37 == 5``: the printer's paper runs out now and then, out now
``disk_low``       ``i % 43 == 9``: 120 MiB free, ``disk_low``
``hot_cpu``        ``i % 61 == 11``: CPU at 83.5 °C
``conflict``       ``i % 97 == 13``: an uplink epoch conflict and a refused downlink epoch
``scale_offline``  ``i % 29 == 15``: the scale drops offline now and then, offline now
``refused``        ``i % 113 == 19``: central refused some batches
``clock``          ``i % 71 == 21``: the clock is not synchronised
``over_budget``    ``i % 10 == 9``: ~150 kB an hour: past 80 % of the 100 MB budget by the
                   month's 22nd day
=================  =========================================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from edge.central.console.db import ConsoleDb
from edge.central.console.schema import ensure_schema

KINDS: dict[str, tuple[int, int]] = {
    "never_heard": (250, 17),
    "offline": (50, 7),
    "backlog": (20, 3),
    "paper_out": (37, 5),
    "disk_low": (43, 9),
    "hot_cpu": (61, 11),
    "conflict": (97, 13),
    "scale_offline": (29, 15),
    "refused": (113, 19),
    "clock": (71, 21),
    "over_budget": (10, 9),
}
BUDGET_BYTES = 100_000_000
NO_ALERT_RULES = """
[silent]
enabled = false
[paper_out]
enabled = false
[disk_low]
enabled = false
[scale_offline]
enabled = false
[conflict]
enabled = false
[link_budget]
enabled = false
"""
"""An alert rules file (edge central serve --alerts) with every rule off: a test adds
the alerts it means, and the evaluator adds none of its own."""
SILENT_H = 30  # how long an offline point has been silent

PROVINCES = [
    "Hà Nội", "Hồ Chí Minh", "Hải Phòng", "Đà Nẵng", "Cần Thơ", "Hà Giang", "Cao Bằng",
    "Lào Cai", "Lai Châu", "Điện Biên", "Sơn La", "Yên Bái", "Tuyên Quang", "Bắc Kạn",
    "Thái Nguyên", "Lạng Sơn", "Quảng Ninh", "Bắc Giang", "Phú Thọ", "Vĩnh Phúc",
    "Bắc Ninh", "Hải Dương", "Hưng Yên", "Hòa Bình", "Hà Nam", "Nam Định", "Thái Bình",
    "Ninh Bình", "Thanh Hóa", "Nghệ An", "Hà Tĩnh", "Quảng Bình", "Quảng Trị",
    "Thừa Thiên Huế", "Quảng Nam", "Quảng Ngãi", "Bình Định", "Phú Yên", "Khánh Hòa",
    "Ninh Thuận", "Bình Thuận", "Kon Tum", "Gia Lai", "Đắk Lắk", "Đắk Nông", "Lâm Đồng",
    "Bình Phước", "Tây Ninh", "Bình Dương", "Đồng Nai", "Bà Rịa - Vũng Tàu", "Long An",
    "Tiền Giang", "Bến Tre", "Trà Vinh", "Vĩnh Long", "Đồng Tháp", "An Giang",
    "Kiên Giang", "Hậu Giang", "Sóc Trăng", "Bạc Liêu", "Cà Mau",
]  # fmt: skip
PLACES = [
    "Bản Phố", "Mường Khương", "Tả Van", "Sà Phìn", "Lũng Cú", "Đồng Văn", "Mèo Vạc",
    "Pả Vi", "Sín Chải", "Tà Xùa", "Mộc Châu", "Bản Lác", "Pù Luông", "Ngọc Chiến",
    "Nậm Cang", "Y Tý", "Hồng Thái", "Xín Mần", "Quản Bạ", "Bắc Hà", "Phìn Hồ",
    "Thượng Lâm", "Khau Phạ", "Mù Cang Chải", "Tủa Chùa", "Hoàng Su Phì", "Nghĩa Lộ",
    "Đăk Hà", "Buôn Đôn", "Ea Súp", "Cầu Kè", "Ô Môn", "Năm Căn", "Đầm Dơi", "Tân Phú",
]  # fmt: skip
DISTRICT_WORDS = ["Thượng", "Hạ", "Trung", "Đông", "Tây", "Nam", "Bắc"]


@dataclass(frozen=True)
class FleetSeed:
    points: int
    days: int
    period_h: int
    records: int  # telemetry history records stored
    seconds: float  # how long the seeding took


def site_of(i: int) -> str:
    return f"vn-{i:05d}"


def is_kind(i: int, kind: str) -> bool:
    every, rest = KINDS[kind]
    return i % every == rest


def first_of(kind: str, but_not: tuple[str, ...] = ("never_heard",)) -> int:
    """The first point number of ``kind`` that is none of ``but_not``."""
    every, rest = KINDS[kind]
    i = rest
    while any(is_kind(i, other) for other in but_not):
        i += every
    return i


def point_name(i: int) -> str:
    return f"Điểm thu mua {PLACES[i % len(PLACES)]} {i // len(PLACES) + 1}"


def province_of(i: int) -> str:
    return PROVINCES[(i * 11) % len(PROVINCES)]


def district_of(i: int) -> str:
    return f"{DISTRICT_WORDS[i % 7]} {PLACES[i % 11]}"


def _cond(kind: str, var: str = "i", mod: str = "%%") -> str:
    """SQL: point ``var`` is of ``kind`` (``mod`` "%%" in a statement with parameters)."""
    every, rest = KINDS[kind]
    return f"({var} {mod} {every} = {rest})"


def _c(kind: str) -> str:
    return _cond(kind, mod="%")


# One telemetry record of point i, the seq-th of its history, recorded at t; n is the
# number of records of its history (the last one is its latest telemetry).
TELE_FUNCTION = f"""
CREATE FUNCTION pg_temp.fleet_tele(i int, seq int, t timestamptz, n int) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
SELECT json_build_object(
  'type', 'telemetry',
  'recorded_at', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'boot_id', '5d1c0b7e-8f4a-4c11-9d5e-' || lpad(to_hex(i), 12, '0'),
  'uptime_s', (seq * 3600 + i % 977)::float,
  'clock_synced', NOT {_c("clock")},
  'version', CASE WHEN i % 9 = 0 THEN '0.9.2' ELSE '0.9.3' END,
  'disk_free_mb', CASE WHEN {_c("disk_low")} THEN 120 ELSE 21000 - (i % 5000) END,
  'disk_total_mb', 29500,
  'disk_low', {_c("disk_low")},
  'mem_avail_mb', 2400 + (i * 13 + seq * 7) % 900,
  'mem_total_mb', 3794,
  'cpu_temp_c', CASE WHEN {_c("hot_cpu")} THEN 83.5
                     ELSE round((44 + (i * 3 + seq * 5) % 17)::numeric, 1) END,
  'outbox', json_build_object(
     'records', json_build_object(
        'depth', CASE WHEN {_c("offline")} AND seq > n - 24 THEN 40 + 12 * (seq - n + 24)
                      WHEN {_c("backlog")} THEN 5 + (seq * 7 + i) % 60
                      ELSE 0 END,
        'oldest_age_s', CASE WHEN {_c("offline")} AND seq > n - 24
                                THEN 3600 * (seq - n + 24)
                             WHEN {_c("backlog")} THEN 600 + ((seq * 7 + i) % 60) * 240
                             END),
     'telemetry', json_build_object('depth', 0, 'oldest_age_s', NULL),
     'bulk', json_build_object(
        'depth', CASE WHEN {_c("backlog")} THEN (seq * 3 + i) % 20 ELSE 0 END,
        'oldest_age_s', CASE WHEN {_c("backlog")} AND (seq * 3 + i) % 20 > 0
                             THEN 1800 END)),
  'last_confirmed_at', to_char((t - interval '5 minutes') AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'devices', json_build_object(
     'scale', json_build_object(
        'status', CASE WHEN {_c("scale_offline")} AND (seq = n OR (seq * 5 + i) % 7 = 0)
                       THEN 'offline' ELSE 'stable' END,
        'error', NULL),
     'printer', json_build_object(
        'status', 'ready',
        'paper', CASE WHEN {_c("paper_out")} AND (seq = n OR (seq * 3 + i) % 5 = 0)
                      THEN 'out' ELSE 'ok' END),
     'camera', json_build_object('status', 'online', 'error', NULL)),
  'link', json_build_object(
     'month', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM'),
     'bytes', (CASE WHEN {_c("over_budget")} THEN 150000 ELSE 40000 + (i % 7) * 9000 END
               * extract(epoch FROM (t AT TIME ZONE 'UTC')
                                    - date_trunc('month', t AT TIME ZONE 'UTC')) / 3600
              )::bigint,
     'budget_bytes', {BUDGET_BYTES}),
  'downlink', json_build_object(
     'applied_upto', 12, 'refused', CASE WHEN {_c("conflict")} THEN 2 ELSE 0 END,
     'foreign_epoch', {_c("conflict")}))
$$"""


def seed_fleet(
    url: str,
    points: int = 5000,
    days: int = 30,
    period_h: int = 1,
    now: datetime | None = None,
) -> FleetSeed:
    """Seeds ``points`` points with ``days`` days of telemetry, one record every
    ``period_h`` hours (the station's default is hourly), ending at ``now``, on ``url``
    (central's store and the console's tables are made when missing)."""
    started = time.perf_counter()
    db = ConsoleDb(url).open()
    try:
        ensure_schema(db)
    finally:
        db.close()
    now = now or datetime.now(UTC)
    per_site = days * 24 // period_h
    silent = -(-SILENT_H // period_h)
    rows = [(site_of(i), point_name(i), province_of(i), district_of(i)) for i in range(points)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(TELE_FUNCTION)
        with (
            conn.cursor() as cur,
            cur.copy("COPY points (site, name, province, district, updated_at) FROM STDIN") as cp,
        ):
            for row in rows:
                cp.write_row((*row, now))
        params = {"points": points, "n": per_site, "silent": silent, "now": now,
                  "period": f"{period_h} hours"}  # fmt: skip
        heard = f"NOT {_cond('never_heard')}"
        # i, its number of history records n, and the time of its seq-th record
        sites = f"""
            SELECT i, 'vn-' || lpad(i::text, 5, '0') AS site,
                   CASE WHEN {_cond("offline")} THEN %(n)s - %(silent)s ELSE %(n)s END AS n
            FROM generate_series(0, %(points)s - 1) AS i WHERE {heard}"""
        at = "%(now)s::timestamptz - (%(n)s - seq) * %(period)s::interval"
        cur = conn.execute(
            f"""INSERT INTO records (site, stream, seq, kind, record_id, body, received_at)
            SELECT s.site, 'telemetry', seq, 'telemetry', NULL,
                   pg_temp.fleet_tele(s.i, seq, {at}, s.n), {at} + interval '4 seconds'
            FROM ({sites}) s, generate_series(1, s.n) AS seq""",
            params,
        )
        stored = cur.rowcount
        conn.execute(
            f"""INSERT INTO sites (site, last_seen, status, status_at, telemetry,
                                   telemetry_seq, telemetry_at)
            SELECT s.site, t + interval '4 seconds',
                   CASE WHEN {_cond("offline")} THEN '{{"state": "offline"}}'::jsonb
                        ELSE jsonb_build_object('state', 'online', 'version',
                             CASE WHEN i %% 9 = 0 THEN '0.9.2' ELSE '0.9.3' END,
                             'config_hash', substr(md5('cfg' || (i %% 4)), 1, 16)) END,
                   t - interval '3 days',
                   pg_temp.fleet_tele(s.i, s.n, t, s.n)::jsonb, s.n, t + interval '4 seconds'
            FROM ({sites}) s,
                 LATERAL (SELECT %(now)s::timestamptz
                                 - (%(n)s - s.n) * %(period)s::interval AS t) x""",
            params,
        )
        conn.execute(
            f"""INSERT INTO progress (site, stream, contiguous_seq, highest_seq, records,
                                      last_seen, epoch, conflict_epoch, conflict_at)
            SELECT s.site, st, 100 + s.i %% 900, 100 + s.i %% 900, 100 + s.i %% 900,
                   %(now)s, 'epoch-' || s.i,
                   CASE WHEN {_cond("conflict")} AND st = 'records'
                        THEN 'other-' || s.i END,
                   CASE WHEN {_cond("conflict")} AND st = 'records'
                        THEN %(now)s::timestamptz - interval '2 hours' END
            FROM ({sites}) s, unnest(ARRAY['records', 'telemetry', 'bulk']) AS st""",
            params,
        )
        conn.execute(
            f"""INSERT INTO refused (site, stream, first_seq, last_seq, epoch, reason, seq,
                                     detail, times, first_at, last_at)
            SELECT s.site, 'records', 50, 52, 'epoch-' || s.i, 'invalid', 50,
                   'weight_g is not an integer', 3,
                   %(now)s::timestamptz - interval '1 day',
                   %(now)s::timestamptz - interval '1 hour'
            FROM ({sites}) s WHERE {_cond("refused", "s.i")}""",
            params,
        )
        conn.execute(
            f"""INSERT INTO down_progress (site, queued_upto, acked_upto, sent_upto,
                                           sent_at, acked_at)
            SELECT s.site, 12, 12, 12, %(now)s, %(now)s FROM ({sites}) s""",
            params,
        )
        conn.execute("ANALYZE records")
        conn.execute("ANALYZE sites")
        conn.execute("ANALYZE points")
    return FleetSeed(points, days, period_h, stored, time.perf_counter() - started)


def main() -> None:  # python -m rigs.fleet_seed URL [POINTS DAYS PERIOD_H]
    import sys

    args = sys.argv[1:]
    numbers = [int(a) for a in args[1:4]] + [5000, 30, 1][len(args[1:4]) :]
    print(seed_fleet(args[0], numbers[0], numbers[1], numbers[2]))


if __name__ == "__main__":
    main()
