"""``edge grade dataset export``: a real station database (lots recorded, photos stored,
grades proposed, confirmed and overridden, lots voided and corrected, by the station's
own code) exported as calibration folders that ``calibrate_folder`` reads."""

from __future__ import annotations

import csv
import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edge.accounts.people import People
from edge.camera import scenes
from edge.camera.dataset import (
    MANIFEST_COLUMNS,
    ExportError,
    Filters,
    Rows,
    Skip,
    Summary,
    export,
    read_station,
    safe_name,
    select,
)
from edge.camera.grading.evaluate import calibrate_folder
from edge.camera.grading.groups import read_groups_file
from edge.camera.photos import encode_photo
from edge.cli import main
from edge.storage.corrections import Corrections
from edge.storage.grades import Grades
from edge.storage.photos import PhotoStore
from edge.storage.store import Store

SITE = "sin-ho-01"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7: 20:00 UTC is the next local day
STAFF, LEAD = "Lò Văn Páo", "Lò Thị Lan"


@dataclass(frozen=True)
class Who:
    """The signed-in person a correction names (edge.web.auth.Person)."""

    id: str
    name: str


class Clock:
    """The station's clock, moved by hand."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


_JPEGS: dict[tuple[str, int], bytes] = {}


def tray(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    items = scenes.random_items(rng, count=3, kind=kind)
    return scenes.make_scene(items, size=(320, 240), px_per_mm=1.0, seed=seed).image


class Station:
    """A station database and photo folder, written by the station's own code."""

    def __init__(self, root: Path) -> None:
        self.clock = Clock()
        self.db = root / "station.db"
        self.photos_dir = root / "photos"
        self.store = Store.open(self.db, SITE, now=self.clock, tz=ZONE)
        self.grades = Grades(self.store)
        self.photos = PhotoStore(self.store, self.photos_dir, 1 << 30)
        self.corrections = Corrections(self.store)
        people = People(self.store)
        self.staff = people.add(STAFF, "staff", "1234", "test")
        self.lead = people.add(LEAD, "lead", "5678", "test")
        self.farmer = self.store.add_producer("Giàng Thị Mỷ", village="Sìn Hồ")["id"]
        self.banana = self.grades.add_product("Chuối tiêu", 12000, "banana")["id"]
        self.potato = self.grades.add_product("Khoai tây", 9000, "potato")["id"]
        self.seed = 0

    def lot(self, product: str, kind: str, photos: int = 1) -> tuple[str, list[str]]:
        lot_id = self.store.record_lot(self.farmer, product, 2500, "ST,GS,+2.500kg").id
        ids = []
        for _ in range(photos):
            self.seed += 1
            row = self.photos.add(lot_id, "camera", encode_photo(tray(kind, self.seed), 88, 96))
            ids.append(row["id"])
        return lot_id, ids

    def graded(self, product: str, kind: str, proposed: str, confirmed: str) -> tuple[str, str]:
        """A lot with one photo, its proposal and its confirmation (an override by the
        lead when the grades differ)."""
        lot_id, [photo] = self.lot(product, kind)
        self.grades.propose(lot_id, proposed, 0.8, "rules", photo)
        by = LEAD if confirmed != proposed else STAFF
        self.grades.confirm(lot_id, confirmed, by)
        return lot_id, photo

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    s = Station(tmp_path / "station")
    yield s
    s.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def files_under(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix == ".jpg"
    )


def run_export(st: Station, out: Path, **kw: object) -> Summary:
    return export(st.db, st.photos_dir, out, ZONE, Filters(**kw))  # type: ignore[arg-type]


# -- pure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("A", "A"),
        ("Loại 1", "Loại 1"),
        ("Loa\u0323i 1", "Loại 1"),  # decomposed Vietnamese: NFC
        ("A/B", "A_B"),
        ("..", "_"),
        (".hidden", "_hidden"),
        ("x: y?", "x_ y_"),
        ("tab\there ", "tab_here"),
        ("CON", "_CON"),
        ("", "_"),
        ("é" * 300, "é" * 100),
    ],
)
def test_safe_name_keeps_a_safe_name_and_mends_the_rest(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def lot_row(lot_id: str, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": lot_id, "site_id": SITE, "product": "Chuối", "grading": "banana", "voided": 0,
        "product_corrected_at": None,
    }  # fmt: skip
    return {**row, **kw}


def photo_row(photo_id: str, lot_id: str, taken_at: str) -> dict[str, object]:
    return {
        "id": photo_id, "lot_id": lot_id, "taken_at": taken_at,
        "path": f"2026-11/{photo_id}.jpg", "deleted_at": None,
    }  # fmt: skip


def confirmation(lot_id: str, grade: str, by: str, at: str) -> dict[str, object]:
    return {"lot_id": lot_id, "grade": grade, "confirmed_by": by, "confirmed_at": at}


def test_select_labels_by_the_latest_confirmation_and_groups_by_local_day() -> None:
    rows = Rows(
        lots=[lot_row("L1"), lot_row("L2", grading=None, product="Gừng/Ginger")],
        confirmations=[
            confirmation("L1", "A", "x", "2026-11-23T03:00:00.000Z"),
            confirmation("L2", "B", "Lò  thị LAN", "2026-11-23T04:00:00.000Z"),
            confirmation("L1", "C", "Lò Thị Lan", "2026-11-23T05:00:00.000Z"),
        ],
        photos=[
            photo_row("p1", "L1", "2026-11-23T16:59:59.000Z"),  # 23:59 local
            photo_row("p2", "L1", "2026-11-23T17:00:00.000Z"),  # 00:00 local, next day
            photo_row("p3", "L2", "2026-11-23T02:00:00.000Z"),
        ],
        roles={"lò thị lan": "lead"},
    )  # fmt: skip
    sel = select(rows, ZONE)
    got = [(i.photo_id, i.product, i.grade, i.group, i.role, i.file) for i in sel.items]
    assert got == [
        ("p3", "Gừng_Ginger", "B", f"{SITE}/2026-11-23", "lead", "B/p3.jpg"),
        ("p1", "banana", "C", f"{SITE}/2026-11-23", "lead", "C/p1.jpg"),
        ("p2", "banana", "C", f"{SITE}/2026-11-24", "lead", "C/p2.jpg"),
    ]
    by_day = select(rows, ZONE, Filters(since=date(2026, 11, 24)))
    assert [i.photo_id for i in by_day.items] == ["p2"]
    until = select(
        rows, ZONE, Filters(until=date(2026, 11, 23), products=frozenset({"GỪNG/GINGER"}))
    )
    assert [i.photo_id for i in until.items] == ["p3"]
    # UTC would have put p2 on the 23rd: the day is the station's
    assert select(rows, UTC, Filters(since=date(2026, 11, 24))).items == []


# -- a real station ---------------------------------------------------------------------


def test_export_layout_labels_and_manifest(station: Station, tmp_path: Path) -> None:
    st = station
    yellow = [st.graded(st.banana, "yellow", "A", "A") for _ in range(3)]
    overridden = st.graded(st.banana, "green", "A", "C")  # the lead's grade wins
    green = [st.graded(st.banana, "green", "C", "C") for _ in range(2)]
    # confirmed A, then confirmed again as C: the latest confirmation is the label
    again, again_photo = st.graded(st.banana, "green", "A", "A")
    st.grades.confirm(again, "C", LEAD)
    voided, voided_photo = st.graded(st.banana, "yellow", "A", "A")
    st.corrections.void_lot(voided, "cân nhầm", Who(st.lead.id, LEAD))
    # recorded as banana, corrected to potato before its grade was confirmed
    moved, [moved_photo] = st.lot(st.banana, "brown")
    st.corrections.correct_lot(moved, "nhầm sản phẩm", Who(st.lead.id, LEAD), product_id=st.potato)
    st.grades.confirm(moved, "B", STAFF)
    # corrected after its grade was confirmed: that grade was a banana grade
    late, late_photo = st.graded(st.banana, "yellow", "A", "A")
    st.corrections.correct_lot(late, "nhầm", Who(st.lead.id, LEAD), product_id=st.potato)
    # a declined shot of a confirmed lot is exported: the label is the person's
    declined, [shot, good] = st.lot(st.banana, "yellow", photos=2)
    st.photos.set_grading(shot, {"declined": "blurry", "message": "Ảnh bị nhòe"})
    st.grades.propose(declined, "A", 0.7, "rules", good)
    st.grades.confirm(declined, "A", STAFF)
    _, [waiting_photo] = st.lot(st.banana, "yellow")  # nobody confirmed it yet

    out = tmp_path / "dataset"
    summary = run_export(st, out)

    a = [p for _, p in yellow] + [shot, good]
    c = [overridden[1], again_photo] + [p for _, p in green]
    assert summary.added == {("banana", "A"): 5, ("banana", "C"): 4, ("potato", "B"): 1}
    assert files_under(out) == sorted(
        [f"banana/A/{p}.jpg" for p in a]
        + [f"banana/C/{p}.jpg" for p in c]
        + [f"potato/B/{moved_photo}.jpg"]
    )
    assert {(s.photo_id, s.reason) for s in summary.skipped} == {
        (voided_photo, Skip.VOIDED),
        (late_photo, Skip.PRODUCT_CORRECTED),
    }
    assert summary.unconfirmed == 1 and waiting_photo not in json.dumps(summary.to_json())

    # the exported file is the station's photo, byte for byte
    src = st.photos.full_path(st.photos.get(again_photo))
    assert src is not None
    assert (out / "banana" / "C" / f"{again_photo}.jpg").read_bytes() == src.read_bytes()

    manifest = read_csv(out / "manifest.csv")
    assert tuple(manifest[0]) == MANIFEST_COLUMNS
    by_photo = {r["photo_id"]: r for r in manifest}
    assert set(by_photo) == set(a) | set(c) | {moved_photo}
    assert by_photo[overridden[1]]["confirmed_by"] == "lead"
    assert by_photo[yellow[0][1]]["confirmed_by"] == "staff"
    assert by_photo[moved_photo]["lot_id"] == moved
    row = by_photo[again_photo]
    assert row["file"] == f"banana/C/{again_photo}.jpg" and row["grade"] == "C"
    assert len(row["sha256"]) == 64 and row["taken_at"].endswith("Z")
    # no personal data leaves the station: no person's or farmer's name anywhere
    text = (out / "manifest.csv").read_text(encoding="utf-8")
    text += (out / "banana" / "groups.csv").read_text(encoding="utf-8")
    for name in (STAFF, LEAD, "Giàng Thị Mỷ"):
        assert name not in text

    groups = read_csv(out / "banana" / "groups.csv")
    assert sorted(g["file"] for g in groups) == sorted(
        [f"A/{p}.jpg" for p in a] + [f"C/{p}.jpg" for p in c]
    )
    # 03:00 UTC on 23 November is 10:00 in Vietnam, the same day
    assert {g["group"] for g in groups} == {f"{SITE}/2026-11-23"}


def test_rerun_adds_only_what_is_new_and_follows_later_confirmations(
    station: Station, tmp_path: Path
) -> None:
    st = station
    lots = [st.graded(st.banana, "yellow", "A", "A") for _ in range(3)]
    out = tmp_path / "dataset"
    first = run_export(st, out)
    assert sum(first.added.values()) == 3
    before = {p: (out / p).stat().st_mtime_ns for p in files_under(out)}
    manifest = (out / "manifest.csv").read_bytes()

    again = run_export(st, out)
    assert sum(again.added.values()) == 0 and again.already == 3
    assert again.moved == [] and again.withdrawn == [] and again.skipped == []
    assert {p: (out / p).stat().st_mtime_ns for p in files_under(out)} == before
    assert (out / "manifest.csv").read_bytes() == manifest

    _, new_photo = st.graded(st.banana, "green", "C", "C")
    st.grades.confirm(lots[0][0], "B", LEAD)  # regraded after the first export
    st.corrections.void_lot(lots[1][0], "cân lại", Who(st.lead.id, LEAD))
    third = run_export(st, out)
    assert third.added == {("banana", "C"): 1}
    assert third.moved == [
        {
            "photo_id": lots[0][1],
            "from": f"banana/A/{lots[0][1]}.jpg",
            "to": f"banana/B/{lots[0][1]}.jpg",
        }
    ]
    assert [(w["photo_id"], w["reason"]) for w in third.withdrawn] == [(lots[1][1], "lot_voided")]
    assert files_under(out) == sorted(
        [f"banana/A/{lots[2][1]}.jpg", f"banana/B/{lots[0][1]}.jpg", f"banana/C/{new_photo}.jpg"]
    )
    manifest_rows = read_csv(out / "manifest.csv")
    assert sorted(r["file"] for r in manifest_rows) == files_under(out)
    assert sorted(g["file"] for g in read_csv(out / "banana" / "groups.csv")) == sorted(
        f.split("/", 1)[1] for f in files_under(out)
    )
    assert third.total == {("banana", "A"): 1, ("banana", "B"): 1, ("banana", "C"): 1}


def test_a_photo_missing_on_disk_is_reported_and_the_rest_exported(
    station: Station, tmp_path: Path
) -> None:
    st = station
    (_, kept), (_, lost) = (st.graded(st.banana, "yellow", "A", "A") for _ in range(2))
    path = st.photos.full_path(st.photos.get(lost))
    assert path is not None
    path.unlink()
    out = tmp_path / "dataset"
    summary = run_export(st, out)
    assert files_under(out) == [f"banana/A/{kept}.jpg"]
    assert [(s.photo_id, s.reason) for s in summary.skipped] == [(lost, Skip.MISSING)]
    report = summary.to_json()
    assert report["skipped"] == {"file_missing": 1}
    assert report["skipped_photos"][0]["message"] == "the photo file is not on the disk"
    assert any(lost in line for line in summary.text())
    # not listed, so it is tried again next time (and reported again while it is gone)
    assert [s.photo_id for s in run_export(st, out).skipped] == [lost]


def test_photos_retention_let_go_are_skipped_and_exported_ones_keep_up(
    station: Station, tmp_path: Path
) -> None:
    st = station
    exported = st.graded(st.banana, "yellow", "A", "A")
    out = tmp_path / "dataset"
    run_export(st, out)
    late = st.graded(st.banana, "yellow", "A", "A")  # confirmed, not exported yet
    st.photos.limit_bytes = 1
    assert st.photos.enforce_retention().deleted == 2  # both JPEGs let go
    st.grades.confirm(exported[0], "B", LEAD)
    summary = run_export(st, out)
    assert [(s.photo_id, s.reason) for s in summary.skipped] == [(late[1], Skip.RETENTION)]
    # the export's hard link still holds the photo, and it follows the new grade
    assert files_under(out) == [f"banana/B/{exported[1]}.jpg"]
    assert [m["photo_id"] for m in summary.moved] == [exported[1]]


def test_the_exported_folder_calibrates_with_its_groups(station: Station, tmp_path: Path) -> None:
    st = station
    for _ in range(2):
        st.graded(st.banana, "yellow", "A", "A")
        st.graded(st.banana, "green", "C", "C")
    st.clock.t += timedelta(days=1)  # a second photo session
    st.graded(st.banana, "yellow", "A", "A")
    st.graded(st.banana, "green", "A", "C")
    st.graded(st.potato, "brown", "B", "B")  # another product's folder beside it
    out = tmp_path / "dataset"
    run_export(st, out, products=frozenset({"Chuối tiêu"}))
    assert sorted(p.name for p in out.iterdir()) == ["banana", "manifest.csv"]
    folder = out / "banana"
    photos = sorted(folder.glob("*/*.jpg"))
    groups = read_groups_file(folder, photos)
    assert groups is not None and len(set(groups)) == 2
    result = calibrate_folder(folder, "banana", copies=0)  # no augmented copies: fast
    assert result.used == {"A": 3, "C": 3} and result.skipped == []
    assert result.model.classes == ("A", "C")


# -- the command ------------------------------------------------------------------------


def station_toml(st: Station, path: Path) -> Path:
    path.write_text(
        f'[site]\nid = "{SITE}"\ntimezone = "Asia/Ho_Chi_Minh"\n'
        f'[storage]\npath = "{st.db}"\n[camera]\nphotos_dir = "{st.photos_dir}"\n',
        encoding="utf-8",
    )
    return path


def test_the_command_prints_a_summary_and_fails_clearly(
    station: Station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = station
    st.graded(st.banana, "yellow", "A", "A")
    st.graded(st.potato, "brown", "B", "B")
    config = station_toml(st, tmp_path / "station.toml")
    out = tmp_path / "dataset"
    base = ["grade", "dataset", "export", str(out), "--config", str(config)]

    assert main([*base, "--product", "potato", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == {"potato": {"B": 1}} and report["added_photos"] == 1

    assert main([*base, "--since", "2026-11-23"]) == 0
    text = capsys.readouterr().out
    assert "1 photo(s) added (1 hard-linked), 1 already there" in text
    assert "banana/A: 1 (+1)" in text and "potato/B: 1 (+0)" in text

    for argv, words in [
        (["export", str(tmp_path / "no" / "out")], "no such folder"),
        (["export", str(config)], "is a file, not a folder"),
        (["export", str(st.photos_dir / "export")], "inside the station's photo folder"),
    ]:
        assert main(["grade", "dataset", *argv, "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("edge grade dataset: ") and words in err, err
    assert main([*base, "--product", "bananna"]) == 2
    err = capsys.readouterr().err
    assert "no lots of product 'bananna'" in err
    assert "banana (Chuối tiêu), potato (Khoai tây)" in err
    missing = tmp_path / "other.toml"
    missing.write_text(f'[storage]\npath = "{tmp_path / "none.db"}"\n', encoding="utf-8")
    assert main(["grade", "dataset", "export", str(out), "--config", str(missing)]) == 2
    assert "no station database" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--since", "23/11/2026"])
    assert exit_.value.code == 2
    # `edge grade` itself still grades a photo
    assert main(["grade", str(tmp_path / "none.jpg"), "--product", "banana"]) == 2


def test_a_full_or_read_only_disk_stops_with_what_to_do_and_a_rerun_goes_on(
    station: Station, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = station
    photos = [st.graded(st.banana, "yellow", "A", "A")[1] for _ in range(3)]
    out = tmp_path / "dataset"
    real_link = os.link
    calls: list[str] = []

    def link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(str(src))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(ExportError, match="disk full") as full:
        run_export(st, out)
    assert "run again" in str(full.value)
    # the photo placed before the disk filled is listed; no half-written file is left
    assert [r["photo_id"] for r in read_csv(out / "manifest.csv")] == photos[:1]
    assert files_under(out) == [f"banana/A/{photos[0]}.jpg"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    def read_only(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "link", read_only)
    with pytest.raises(ExportError, match="not writable"):
        run_export(st, out)

    monkeypatch.setattr(os, "link", real_link)
    summary = run_export(st, out)
    assert summary.added == {("banana", "A"): 2} and summary.already == 1
    assert summary.linked == 2  # the photos' own filesystem: hard links, no space taken
    assert files_under(out) == sorted(f"banana/A/{p}.jpg" for p in photos)


def test_the_station_database_is_read_while_the_station_writes(
    station: Station, tmp_path: Path
) -> None:
    st = station
    st.graded(st.banana, "yellow", "A", "A")
    with st.store.write() as db:  # the station holds the write lock meanwhile
        db.execute("UPDATE products SET unit_price_dong = 13000 WHERE id = ?", [st.banana])
        rows = read_station(st.db)
    assert len(rows.lots) == 1 and len(rows.photos) == 1
    assert rows.roles == {"lò văn páo": "staff", "lò thị lan": "lead"}
