"""Photos on disk and in the database: upload checks (pure), atomic files before rows,
clean-up after a kill between file and row, retention order and its limits, and a
full disk (a real 256 kB tmpfs in a private mount namespace). Real SQLite files,
generated images."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PilImage

from edge.camera import scenes
from edge.camera.photos import (
    EncodedPhoto,
    PhotoRejected,
    UploadLimits,
    decode_upload,
    encode_photo,
    fit_within,
    image_size,
)
from edge.storage.grades import Grades
from edge.storage.photos import PhotoStorageError, PhotoStore, write_atomic
from edge.storage.store import NotFound, Store
from rigs.need import mount_namespace

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tray() -> np.ndarray:
    return scenes.make_scene(size=(640, 480), px_per_mm=2.0).image


@pytest.fixture(scope="module")
def encoded(tray: np.ndarray) -> EncodedPhoto:
    return encode_photo(tray, 88, 160)


class Clock:
    """The store's clock, moved by hand (it may go backwards, as after a power cut)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store.open(tmp_path / "station.db", "test-site", now=clock)
    yield s
    s.close()


def new_lot(store: Store, grams: int = 2500) -> str:
    producer = store.add_producer("Lò Văn Pằn", village="Nậm Tăm")
    product = Grades(store).add_product("Chuối tiêu", 12000, "banana")
    return store.record_lot(producer["id"], product["id"], grams, "ST,GS,+2.500kg").id


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- pure: uploads ---------------------------------------------------------------------


def _jpeg(img: np.ndarray) -> bytes:
    return scenes.jpeg(img)


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf.tobytes())


def test_image_size_from_headers(tray: np.ndarray) -> None:
    assert image_size(_jpeg(tray)) == (640, 480)
    assert image_size(_png(tray)) == (640, 480)
    progressive = PilImage.fromarray(tray[..., ::-1].copy())
    buf = io.BytesIO()
    progressive.save(buf, "JPEG", progressive=True, quality=80)
    assert image_size(buf.getvalue()) == (640, 480)
    assert image_size(_jpeg(tray)[:20]) is None  # cut before the frame header
    assert image_size(b"\xff\xd8\xff\xe0") is None


def test_uploads_that_are_not_photos_are_refused_with_what_to_do(tray: np.ndarray) -> None:
    limits = UploadLimits(max_bytes=200_000)
    cases = [
        (b"", "image/jpeg", "empty_photo", 422),
        (b"GIF89a" + bytes(100), "image/jpeg", "not_an_image", 422),
        (b"\xff\xd8\xff\xe0" + bytes(100), "image/jpeg", "not_an_image", 422),  # no frame
        (_jpeg(tray), "text/plain", "unsupported_media_type", 415),
        (bytes(300_000), "image/jpeg", "photo_too_large", 413),
    ]
    for data, ctype, code, status in cases:
        with pytest.raises(PhotoRejected) as exc:
            decode_upload(data, ctype, limits)
        assert (exc.value.code, exc.value.status) == (code, status), data[:10]
        assert exc.value.message and exc.value.message_en
    with pytest.raises(PhotoRejected) as exc:
        decode_upload(bytes(300_000), "image/jpeg", limits)
    assert "(0.3 MB, at most 0.2 MB)" in exc.value.message_en


def test_a_decompression_bomb_is_refused_from_its_header(tray: np.ndarray) -> None:
    png = bytearray(_png(tray[:8, :8]))
    png[16:24] = (40_000).to_bytes(4, "big") + (40_000).to_bytes(4, "big")  # 1.6 gigapixels
    with pytest.raises(PhotoRejected) as exc:
        decode_upload(bytes(png), "image/png", UploadLimits())
    assert exc.value.status == 413 and "1600 megapixels" in exc.value.message_en


def test_jpeg_png_and_octet_stream_decode(tray: np.ndarray) -> None:
    for data, ctype in (
        (_jpeg(tray), "image/jpeg"),
        (_png(tray), "image/png; q=1"),
        (_png(tray), None),
    ):
        frame = decode_upload(data, ctype, UploadLimits())
        assert frame.shape == (480, 640, 3)
    assert np.array_equal(decode_upload(_png(tray), "image/png", UploadLimits()), tray)


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tray: np.ndarray) -> None:
    pil = PilImage.fromarray(tray[..., ::-1].copy())
    exif = PilImage.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": how a phone held upright saves it
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif, quality=90)
    frame = decode_upload(buf.getvalue(), "image/jpeg", UploadLimits())
    assert frame.shape == (640, 480, 3)

    def diff(turned: np.ndarray) -> float:
        return float(np.abs(frame.astype(np.int16) - turned.astype(np.int16)).mean())

    assert diff(cv2.rotate(tray, cv2.ROTATE_90_CLOCKWISE)) < 3  # upright: as the phone saw it
    assert diff(cv2.rotate(tray, cv2.ROTATE_90_COUNTERCLOCKWISE)) > 10


def test_fit_within_keeps_orientation_and_never_enlarges(tray: np.ndarray) -> None:
    big = np.asarray(cv2.resize(tray, (4000, 3000)), np.uint8)
    assert fit_within(big, 1280, 960).shape == (960, 1280, 3)
    tall = np.ascontiguousarray(np.rot90(big))
    assert fit_within(tall, 1280, 960).shape == (1280, 960, 3)
    assert fit_within(tray, 1280, 960) is tray


def test_encode_photo_sizes(tray: np.ndarray) -> None:
    e = encode_photo(tray, 88, 160)
    assert (e.width, e.height, e.thumb_width, e.thumb_height) == (640, 480, 160, 120)
    assert e.jpeg.startswith(b"\xff\xd8") and e.thumb.startswith(b"\xff\xd8")
    assert len(e.thumb) < len(e.jpeg) / 4
    assert encode_photo(tray, 40, 160).jpeg != e.jpeg  # the quality is applied


# -- files and rows --------------------------------------------------------------------


def test_write_atomic_leaves_the_file_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.jpg"
    write_atomic(target, b"\xff\xd8one")
    write_atomic(target, b"\xff\xd8two")
    assert target.read_bytes() == b"\xff\xd8two"
    assert files_under(tmp_path) == ["a/b/x.jpg"]
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    with pytest.raises(PhotoStorageError) as exc:
        write_atomic(blocked / "y.jpg", b"data")  # a file where the folder should be
    assert not exc.value.disk_full and "intact" in exc.value.message_en


def test_a_photo_is_stored_as_files_and_a_row(
    store: Store, tmp_path: Path, encoded: EncodedPhoto
) -> None:
    lot = new_lot(store)
    photos = PhotoStore(store, tmp_path / "photos", 1 << 30)
    row = photos.add(lot, "camera", encoded)
    assert (photos.root / row["path"]).read_bytes() == encoded.jpeg
    assert (photos.root / row["thumb_path"]).read_bytes() == encoded.thumb
    assert row["path"] == f"2026-11/{row['id']}.jpg"
    [stored] = photos.for_lot(lot)
    assert stored["bytes"] == len(encoded.jpeg) and stored["source"] == "camera"
    assert stored["taken_at"] == "2026-11-23T03:00:00.000Z"
    assert (stored["width"], stored["height"]) == (640, 480)
    audit = store.rows("SELECT action, record_id FROM audit_log WHERE action = 'photo.stored'")
    assert audit == [{"action": "photo.stored", "record_id": row["id"]}]


def test_unknown_lot_writes_nothing(store: Store, tmp_path: Path, encoded: EncodedPhoto) -> None:
    photos = PhotoStore(store, tmp_path / "photos", 1 << 30)
    with pytest.raises(NotFound):
        photos.add("01a00000-0000-7000-8000-000000000000", "upload", encoded)
    assert not (tmp_path / "photos").exists()
    assert store.rows("SELECT COUNT(*) AS n FROM photos") == [{"n": 0}]


KILL_BETWEEN_FILE_AND_ROW = """
import os, signal, sys
from pathlib import Path
from edge.camera.photos import EncodedPhoto
from edge.storage.photos import PhotoStore
from edge.storage.store import Store

db, root, lot, jpeg = sys.argv[1:5]
data = Path(jpeg).read_bytes()
store = Store.open(Path(db), "test-site")
photos = PhotoStore(store, Path(root), 1 << 30)
photo = EncodedPhoto(data, 640, 480, data[: len(data) // 3], 160, 120)
photos.add(lot, "camera", photo)  # one photo fully recorded
def killed(*_a, **_k):
    os.kill(os.getpid(), signal.SIGKILL)  # power cut: files written, row not
store.write = killed
photos.add(lot, "camera", photo)
"""


def test_a_kill_between_file_and_row_leaves_files_the_next_start_removes(
    store: Store, tmp_path: Path, encoded: EncodedPhoto
) -> None:
    lot = new_lot(store)
    root = tmp_path / "photos"
    jpeg = tmp_path / "frame.jpg"
    jpeg.write_bytes(encoded.jpeg)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_BETWEEN_FILE_AND_ROW,
            str(store_path(store)),
            str(root),
            lot,
            str(jpeg),
        ],
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    [row] = store.rows("SELECT id, path, thumb_path FROM photos")
    assert len(files_under(root)) == 4  # the recorded photo's two files and the orphans
    month = Path(row["path"]).parent  # the month the photo was stored under, whatever today is
    half = root / month / f".{row['id']}.jpg.0badc0de.tmp"  # a write cut mid-way
    half.write_bytes(b"\xff\xd8partial")
    foreign = root / "README.txt"  # not the station's: left alone
    foreign.write_text("notes")

    report = PhotoStore(store, root, 1 << 30).clean_up()
    assert (report.orphans_removed, report.temporaries_removed, report.missing) == (2, 1, [])
    assert files_under(root) == sorted([row["path"], row["thumb_path"], "README.txt"])


def store_path(store: Store) -> Path:
    [main] = [r for r in store.rows("PRAGMA database_list") if r["name"] == "main"]
    return Path(main["file"])


def test_clean_up_reports_a_file_lost_without_retention(
    store: Store, tmp_path: Path, encoded: EncodedPhoto, caplog: pytest.LogCaptureFixture
) -> None:
    photos = PhotoStore(store, tmp_path / "photos", 1 << 30)
    row = photos.add(new_lot(store), "upload", encoded)
    (photos.root / row["path"]).unlink()
    with caplog.at_level(logging.ERROR, "edge.storage.photos"):
        report = photos.clean_up()
    assert report.missing == [row["path"]]
    assert "recorded but missing" in caplog.text


# -- retention -------------------------------------------------------------------------


def test_retention_deletes_confirmed_lots_oldest_first_and_never_unconfirmed(
    store: Store,
    tmp_path: Path,
    encoded: EncodedPhoto,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grades = Grades(store)
    photos = PhotoStore(store, tmp_path / "photos", 1 << 30)
    lots, rows = [], []
    for hours in (0, -30, -60, -90):  # the clock runs backwards: order is by lot number
        clock.t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC) + timedelta(hours=hours)
        lots.append(new_lot(store))
        rows.append(photos.add(lots[-1], "camera", encoded))
    one = len(encoded.jpeg) + len(encoded.thumb)
    grades.confirm(lots[3], "B", "Mỷ")
    grades.confirm(lots[0], "A", "Mỷ")
    grades.confirm(lots[2], "C", "Mỷ")

    photos.limit_bytes = 4 * one  # at the limit: nothing to do
    report = photos.enforce_retention()
    assert (report.deleted, report.over_limit, report.total_bytes) == (0, False, 4 * one)

    photos.limit_bytes = 4 * one - 1  # one JPEG must go: the oldest confirmed lot's
    report = photos.enforce_retention()
    assert report.deleted == 1 and not report.over_limit
    gone = {r["id"] for r in store.rows("SELECT id FROM photos WHERE deleted_at IS NOT NULL")}
    assert gone == {rows[0]["id"]}

    photos.limit_bytes = 2 * one  # two more confirmed ones go, in lot order
    report = photos.enforce_retention()
    assert report.deleted == 2
    deleted = store.rows(
        "SELECT id, deleted_reason FROM photos WHERE deleted_at IS NOT NULL ORDER BY id"
    )
    assert {r["id"] for r in deleted} == {rows[0]["id"], rows[2]["id"], rows[3]["id"]}
    assert {r["deleted_reason"] for r in deleted} == {"retention"}

    photos.limit_bytes = 1  # still over: only the unconfirmed lot's photo is left; kept
    with caplog.at_level(logging.WARNING, "edge.storage.photos"):
        report = photos.enforce_retention()
    assert report.deleted == 0 and report.over_limit
    assert report.unconfirmed_bytes == one
    assert report.total_bytes == one + 3 * len(encoded.thumb)
    assert "never deleted" in caplog.text
    kept = sorted([rows[1]["path"]] + [r["thumb_path"] for r in rows])
    assert files_under(photos.root) == kept  # every thumbnail stays
    assert photos.full_path(photos.get(rows[0]["id"])) is None
    [audit] = store.rows(
        "SELECT detail FROM audit_log WHERE action = 'photos.retention' ORDER BY id LIMIT 1"
    )
    assert json.loads(audit["detail"])["photos"] == [rows[0]["id"]]


def test_a_crash_after_retention_marked_a_row_is_finished_at_start(
    store: Store, tmp_path: Path, encoded: EncodedPhoto
) -> None:
    photos = PhotoStore(store, tmp_path / "photos", 1)
    lot = new_lot(store)
    row = photos.add(lot, "camera", encoded)
    Grades(store).confirm(lot, "A", "Mỷ")
    kept = (photos.root / row["path"]).read_bytes()
    photos.enforce_retention()
    (photos.root / row["path"]).write_bytes(kept)  # as if the power went before the unlink
    report = photos.clean_up()
    assert report.retained_removed == 1 and report.missing == []
    assert files_under(photos.root) == [row["thumb_path"]]


# -- a full disk -----------------------------------------------------------------------


FILL_THE_DISK = """
import json, sys
from pathlib import Path
from edge.camera.photos import EncodedPhoto
from edge.storage.photos import PhotoStorageError, PhotoStore
from edge.storage.store import Store

db, root, lot, jpeg = sys.argv[1:5]
data = Path(jpeg).read_bytes()
store = Store.open(Path(db), "test-site")
photos = PhotoStore(store, Path(root), 1 << 30)
photo = EncodedPhoto(data, 640, 480, data[: len(data) // 4], 160, 120)
stored, error = [], None
for _ in range(100):
    try:
        stored.append(photos.add(lot, "camera", photo)["id"])
    except PhotoStorageError as exc:
        error = {"disk_full": exc.disk_full, "message": exc.message, "en": exc.message_en}
        break
intact = all(
    (Path(root) / r["path"]).read_bytes() == data for r in photos.for_lot(lot)
)
names = sorted(p.name for p in Path(root).rglob("*") if p.is_file())
print(json.dumps({"stored": stored, "error": error, "intact": intact, "names": names}))
"""


def test_a_full_disk_is_a_clear_error_and_loses_nothing(
    store: Store, tmp_path: Path, encoded: EncodedPhoto
) -> None:
    unshare = mount_namespace()  # skipped without one, failed under CI=true (rigs.need)
    lot = new_lot(store)
    root = tmp_path / "photos"
    root.mkdir()
    jpeg = tmp_path / "frame.jpg"
    jpeg.write_bytes(encoded.jpeg)
    script = tmp_path / "fill.py"
    script.write_text(textwrap.dedent(FILL_THE_DISK))
    shell = (
        f"mount -t tmpfs -o size=256k tmpfs {root} && "
        f"exec {sys.executable} {script} {store_path(store)} {root} {lot} {jpeg}"
    )
    proc = subprocess.run(
        [*unshare, "sh", "-c", shell],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["error"] is not None and out["error"]["disk_full"]
    assert "Đĩa đầy" in out["error"]["message"] and "free disk space" in out["error"]["en"]
    assert len(out["stored"]) >= 2  # some fitted before the disk filled
    assert out["intact"]
    assert not [n for n in out["names"] if n.endswith(".tmp")]
    expected = sorted(f"{i}{s}" for i in out["stored"] for s in (".jpg", ".thumb.jpg"))
    assert out["names"] == expected  # the refused photo left nothing behind
    rows = store.rows("SELECT id FROM photos ORDER BY id")
    assert [r["id"] for r in rows] == sorted(out["stored"])
