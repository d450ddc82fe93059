"""The station's own calibration photos: every photo of a lot whose grade a person
confirmed (or a lead overrode), in folders a calibration reads (``edge grade dataset
export``, issue 17).

A cooperative's model should learn from its own season: its camera, its trays, its
produce, and the grades its people gave. The label of a photo is its lot's latest
confirmed grade, never the grade the station proposed, so every photo of such a lot is
exported, a declined (ungradeable) shot too: the label is the person's.

Layout written under ``OUT``::

    OUT/<product>/<grade>/<photo id>.jpg    the station's JPEG (hard-linked on the same
                                            filesystem, else copied)
    OUT/<product>/groups.csv                file,group: the photo session of each photo,
                                            "<site>/<local day of the photo>"
    OUT/manifest.csv                        one row per exported photo (below)

so ``edge grade calibrate OUT/<product> --product <product>`` reads a product's folder
as it is, and its group-aware cross-validation keeps a day's photos together.

``<product>`` is the product's grading key (its rules' name, which the calibrate command
and the station's models go by), or its name when it has none; a product as corrected
(``lots_current``). Names are made safe as folder names (:func:`safe_name`). A voided
lot is left out, and so is a lot whose product was corrected after its grade was
confirmed: that grade was one of the other product's grades.

``manifest.csv`` says where each photo came from (product, grade, file relative to
``OUT``, lot id, photo id, taken_at, group, sha256) and ``confirmed_by`` as the role of
whoever confirmed (staff, lead, ...), never the name: the dataset leaves the station.

Running again into the same ``OUT`` adds only photos not yet in its manifest (by photo
id). A photo already exported whose lot's label has changed since (a new confirmation)
is moved to its new grade folder, and one whose lot was voided since is taken out; a
photo a person deleted from ``OUT`` stays listed and is not exported again. Each photo
is placed whole (a temporary name renamed), then the manifest and every ``groups.csv``
are rewritten atomically, also when a run stops on an error (disk full), so they list
what is on the disk and running again goes on where it stopped.

A hard link takes no space, but it keeps a photo's bytes on the card after retention
lets the station's own name go: on the station's card, move the export off (a USB disk)
and delete it. ``OUT`` inside the photo folder is refused (the station's start-up
clean-up removes photo files it has no row for).

The choice of what to export (:func:`select`, :func:`plan`) is pure, from the
database's rows; :func:`read_station` reads those rows in one read-only snapshot (the
station may be running), :func:`write` does the file work.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import shutil
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any

from edge import files
from edge.accounts.people import name_key
from edge.ids import parse_iso

MANIFEST = "manifest.csv"
GROUPS = "groups.csv"  # read by edge.camera.grading.groups (file relative to its folder)
MANIFEST_COLUMNS = (
    "product", "grade", "file", "lot_id", "photo_id", "taken_at", "group", "confirmed_by",
    "sha256",
)  # fmt: skip
UNKNOWN_ROLE = "unknown"  # a confirmation by a name no account has (before issue 12)
NEEDS_SCHEMA = 14  # lots_current: lots as corrected, and voids (migration 0014)
MIB = 1 << 20
_UNSAFE = set('<>:"/\\|?*')  # not in a folder name on FAT/exFAT (USB sticks) or Windows
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(10)}
_MAX_NAME = 100  # characters; a name of at most 255 bytes in UTF-8 whatever its letters
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class ExportError(Exception):
    """The export cannot go on; the message says what is wrong and what to do."""


class Skip(StrEnum):
    """Why a photo of a confirmed lot was not exported."""

    VOIDED = "lot_voided"  # the lot was voided: it counts for nothing
    PRODUCT_CORRECTED = "product_corrected_after_grade"  # its grade was another product's
    RETENTION = "removed_by_retention"  # the full JPEG was let go to keep the disk free
    MISSING = "file_missing"  # the row names a file that is not on the disk


SKIP_TEXT = {
    Skip.VOIDED: "the lot was voided",
    Skip.PRODUCT_CORRECTED: "the lot's product was corrected after its grade was confirmed; "
    "confirm the grade again to export it",
    Skip.RETENTION: "retention removed the full photo (only the thumbnail is kept)",
    Skip.MISSING: "the photo file is not on the disk",
}
WITHDRAW = frozenset({Skip.VOIDED, Skip.PRODUCT_CORRECTED})  # already exported: taken out


def safe_name(name: str) -> str:
    """``name`` as one folder name on any disk a dataset is carried on: Unicode NFC
    (Vietnamese letters kept), no path separator, control character or character FAT
    and Windows refuse (each becomes ``_``), no leading dot (a hidden folder, which a
    calibration skips), no trailing dot or space, not a device name, at most 100
    characters; ``_`` when nothing is left. An already safe name is unchanged, so a
    grade's folder is the grade (a model's classes are its folder names)."""
    text = unicodedata.normalize("NFC", name)
    text = "".join(
        "_" if c in _UNSAFE or unicodedata.category(c).startswith("C") else c for c in text
    )
    text = text.strip().rstrip(". ")[:_MAX_NAME].rstrip(". ")
    if text.startswith("."):
        text = "_" + text[1:]
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    return text or "_"


# -- what to export: pure ----------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """The station database's rows the export reads (:func:`read_station`).

    ``lots``: id, site_id, product (its name), grading (its grading key or None), voided
    (0/1), product_corrected_at (the latest product correction's time, or None);
    ``confirmations``: lot_id, grade, confirmed_by, confirmed_at, in the order they were
    recorded; ``photos``: id, lot_id, taken_at, path (relative to the photo folder),
    deleted_at; ``roles``: a person's name key -> role."""

    lots: Sequence[Mapping[str, Any]]
    confirmations: Sequence[Mapping[str, Any]]
    photos: Sequence[Mapping[str, Any]]
    roles: Mapping[str, str]


def product_folder(lot: Mapping[str, Any]) -> str:
    """A lot's product folder: its grading key (what calibrate and the station's models
    go by), else its name."""
    return safe_name(str(lot.get("grading") or lot["product"]))


def _names(lot: Mapping[str, Any]) -> set[str]:
    """What ``--product`` may call a lot's product, case-folded."""
    names = {product_folder(lot), str(lot["product"]), str(lot.get("grading") or "")}
    return {n.casefold() for n in names if n}


@dataclass(frozen=True)
class Filters:
    products: frozenset[str] = frozenset()  # grading keys or product names; empty: all
    since: date | None = None  # the photo's local day, inclusive
    until: date | None = None

    def wants_product(self, lot: Mapping[str, Any]) -> bool:
        return not self.products or bool(_names(lot) & {p.casefold() for p in self.products})

    def wants_day(self, day: date) -> bool:
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )


@dataclass(frozen=True)
class Item:
    """One photo to be in the dataset, with its label."""

    product: str  # folder name
    grade: str  # folder name
    photo_id: str
    lot_id: str
    taken_at: str
    group: str  # "<site>/<local day>"
    role: str  # who confirmed: their role
    source: str  # path relative to the station's photo folder
    # retention let the station's JPEG go: an export made before keeps its label up to
    # date, a new one cannot be made
    released: bool = False

    @property
    def file(self) -> str:
        """Relative to ``OUT/<product>`` (groups.csv); the manifest puts the product first."""
        return f"{self.grade}/{Path(self.source).name}"

    def manifest_row(self, sha256: str) -> dict[str, str]:
        return {
            "product": self.product,
            "grade": self.grade,
            "file": f"{self.product}/{self.file}",
            "lot_id": self.lot_id,
            "photo_id": self.photo_id,
            "taken_at": self.taken_at,
            "group": self.group,
            "confirmed_by": self.role,
            "sha256": sha256,
        }


@dataclass(frozen=True)
class Skipped:
    photo_id: str
    lot_id: str
    product: str
    grade: str
    reason: Skip

    def to_json(self) -> dict[str, str]:
        return {
            "photo_id": self.photo_id,
            "lot_id": self.lot_id,
            "product": self.product,
            "grade": self.grade,
            "reason": self.reason.value,
            "message": SKIP_TEXT[self.reason],
        }


@dataclass(frozen=True)
class Selection:
    items: list[Item]
    skipped: list[Skipped]
    unconfirmed: int  # photos (within the filters) of lots nobody has confirmed yet


def latest_confirmations(
    confirmations: Iterable[Mapping[str, Any]],
) -> dict[str, Mapping[str, Any]]:
    """Each lot's latest confirmation (the rows come in the order they were recorded)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for c in confirmations:
        latest[str(c["lot_id"])] = c
    return latest


def local_day(taken_at: str, tz: tzinfo) -> date:
    return parse_iso(taken_at).astimezone(tz).date()


def _check_products(filters: Filters, lots: Sequence[Mapping[str, Any]]) -> None:
    """A ``--product`` naming no product of the station's lots is a mistake (a typo would
    otherwise export the other products and say nothing)."""
    named: set[str] = set()
    known: dict[str, str] = {}
    for lot in lots:
        named |= _names(lot)
        known.setdefault(product_folder(lot), str(lot["product"]))
    unknown = sorted(p for p in filters.products if p.casefold() not in named)
    if unknown:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(known.items())) or "none"
        raise ExportError(
            f"no lots of product {', '.join(map(repr, unknown))} at this station; its "
            f"products with lots: {listed}. Give --product a grading key or a name"
        )


def select(rows: Rows, tz: tzinfo, filters: Filters = Filters()) -> Selection:
    """The photos to export, each labelled with its lot's latest confirmed grade, and
    the photos of confirmed lots left out with the reason (module docstring)."""
    lots = {str(lot["id"]): lot for lot in rows.lots}
    _check_products(filters, rows.lots)
    confirmed = latest_confirmations(rows.confirmations)
    items: list[Item] = []
    skipped: list[Skipped] = []
    unconfirmed = 0
    for photo in sorted(rows.photos, key=lambda p: (str(p["taken_at"]), str(p["id"]))):
        lot = lots.get(str(photo["lot_id"]))
        if lot is None:
            continue
        product = product_folder(lot)
        day = local_day(str(photo["taken_at"]), tz)
        if not (filters.wants_product(lot) and filters.wants_day(day)):
            continue
        c = confirmed.get(str(lot["id"]))
        if c is None:
            unconfirmed += not lot["voided"]
            continue
        grade = safe_name(str(c["grade"]))
        reason: Skip | None = None
        corrected_at = lot.get("product_corrected_at")
        if lot["voided"]:
            reason = Skip.VOIDED
        elif corrected_at and parse_iso(str(corrected_at)) > parse_iso(str(c["confirmed_at"])):
            reason = Skip.PRODUCT_CORRECTED
        if reason is not None:
            skipped.append(Skipped(str(photo["id"]), str(lot["id"]), product, grade, reason))
            continue
        items.append(
            Item(
                product=product,
                grade=grade,
                photo_id=str(photo["id"]),
                lot_id=str(lot["id"]),
                taken_at=str(photo["taken_at"]),
                group=f"{lot['site_id']}/{day.isoformat()}",
                role=rows.roles.get(name_key(str(c["confirmed_by"])), UNKNOWN_ROLE),
                source=str(photo["path"]),
                released=bool(photo["deleted_at"]),
            )
        )
    return Selection(items, skipped, unconfirmed)


@dataclass(frozen=True)
class Plan:
    """What a run does to ``OUT`` given what its manifest already lists."""

    new: list[Item]  # to place
    moved: list[tuple[dict[str, str], Item]]  # exported with another label: (row, now)
    withdrawn: list[dict[str, str]]  # exported, but its lot was voided or re-producted
    kept: list[dict[str, str]]  # exported and unchanged (or outside this run's filters)


def plan(selection: Selection, manifest: Sequence[dict[str, str]]) -> Plan:
    """New photos are those whose id the manifest does not list (re-running adds only
    these); a listed photo whose label changed moves, one whose lot no longer counts
    is withdrawn, the rest stay as they are."""
    now = {i.photo_id: i for i in selection.items}
    gone = {s.photo_id for s in selection.skipped if s.reason in WITHDRAW}
    listed = {r["photo_id"] for r in manifest}
    moved, withdrawn, kept = [], [], []
    for row in manifest:
        item = now.get(row["photo_id"])
        if row["photo_id"] in gone:
            withdrawn.append(row)
        elif item is not None and (item.product, item.grade) != (row["product"], row["grade"]):
            moved.append((row, item))
        else:
            kept.append(row)
    new = [i for i in selection.items if i.photo_id not in listed]
    return Plan(new, moved, withdrawn, kept)


def groups_rows(manifest: Iterable[Mapping[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Per product folder, its groups.csv rows (file relative to the folder, group)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for row in manifest:
        rel = row["file"].split("/", 1)[1]
        out.setdefault(row["product"], []).append((rel, row["group"]))
    return {p: sorted(rs) for p, rs in out.items()}


# -- the summary -------------------------------------------------------------------------


@dataclass
class Summary:
    out: Path
    added: Counter[tuple[str, str]] = field(default_factory=Counter)  # (product, grade)
    total: Counter[tuple[str, str]] = field(default_factory=Counter)  # in OUT after the run
    already: int = 0  # listed before this run and unchanged
    moved: list[dict[str, str]] = field(default_factory=list)  # from, to, photo_id
    withdrawn: list[dict[str, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unconfirmed: int = 0
    linked: int = 0  # of the added: hard links (same filesystem) rather than copies

    def to_json(self) -> dict[str, Any]:
        def nested(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for (product, grade), n in sorted(counts.items()):
                out.setdefault(product, {})[grade] = n
            return out

        return {
            "out": str(self.out),
            "added": nested(self.added),
            "total": nested(self.total),
            "added_photos": sum(self.added.values()),
            "already_exported": self.already,
            "hard_linked": self.linked,
            "moved": self.moved,
            "withdrawn": self.withdrawn,
            "skipped": dict(sorted(Counter(s.reason.value for s in self.skipped).items())),
            "skipped_photos": [s.to_json() for s in self.skipped],
            "unconfirmed_photos": self.unconfirmed,
        }

    def text(self) -> list[str]:
        added = sum(self.added.values())
        linked = f" ({self.linked} hard-linked)" if self.linked else ""
        lines = [
            f"{self.out}: {added} photo(s) added{linked}, {self.already} already there, "
            f"{len(self.moved)} moved to a new grade, {len(self.withdrawn)} taken out"
        ]
        for (product, grade), n in sorted(self.total.items()):
            lines.append(f"  {product}/{grade}: {n} (+{self.added[(product, grade)]})")
        for m in self.moved:
            lines.append(f"  moved {m['photo_id']}: {m['from']} -> {m['to']}")
        for w in self.withdrawn:
            lines.append(f"  taken out {w['photo_id']} ({w['file']}): {w['reason']}")
        if self.skipped:
            counts = Counter(s.reason for s in self.skipped)
            lines.append(f"  skipped {len(self.skipped)}:")
            for reason, n in sorted(counts.items()):
                lines.append(f"    {reason.value}: {n} ({SKIP_TEXT[reason]})")
            for s in self.skipped:
                if s.reason is Skip.MISSING:
                    lines.append(f"    {s.photo_id} (lot {s.lot_id}, {s.product}/{s.grade})")
        if self.unconfirmed:
            lines.append(f"  {self.unconfirmed} photo(s) of lots not yet confirmed wait")
        return lines


# -- reading the station -----------------------------------------------------------------

_LOTS = (
    "SELECT c.id, c.site_id, pr.name AS product, pr.grading, c.voided, "
    "(SELECT x.at FROM corrections x WHERE x.lot_id = c.id AND x.product_id IS NOT NULL "
    " ORDER BY x.rowid DESC LIMIT 1) AS product_corrected_at "
    "FROM lots_current c JOIN products pr ON pr.id = c.product_id"
)
_CONFIRMATIONS = (
    "SELECT lot_id, grade, confirmed_by, confirmed_at FROM grade_confirmations ORDER BY rowid"
)
_PHOTOS = "SELECT id, lot_id, taken_at, path, deleted_at FROM photos"


def read_station(db_path: Path) -> Rows:
    """The rows :func:`select` needs, in one read-only snapshot: the station may be
    running and writing (WAL); nothing is written, nothing migrated."""
    if not db_path.is_file():
        raise ExportError(
            f"no station database at {db_path}: check [storage] path in the station config "
            "(--config)"
        )
    try:
        conn = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise ExportError(f"cannot open the station database {db_path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < NEEDS_SCHEMA:
            raise ExportError(
                f"the station database {db_path} has schema version {version}; the export "
                f"needs {NEEDS_SCHEMA} or later: start the station once (it migrates), then "
                "export"
            )
        conn.execute("BEGIN")  # one snapshot for all four reads
        lots = [dict(r) for r in conn.execute(_LOTS)]
        confirmations = [dict(r) for r in conn.execute(_CONFIRMATIONS)]
        photos = [dict(r) for r in conn.execute(_PHOTOS)]
        roles = {str(r[0]): str(r[1]) for r in conn.execute("SELECT name_key, role FROM people")}
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ExportError(f"cannot read the station database {db_path}: {exc}") from exc
    finally:
        conn.close()
    return Rows(lots, confirmations, photos, roles)


# -- writing -----------------------------------------------------------------------------


def read_manifest(out: Path) -> list[dict[str, str]]:
    """The rows of ``OUT/manifest.csv`` (none when there is none yet)."""
    path = out / MANIFEST
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ExportError(
                    f"{path} is not an export's manifest (no {', '.join(sorted(missing))} "
                    "column): export into an empty folder or a folder this command made"
                )
            return [{k: row[k] or "" for k in MANIFEST_COLUMNS} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _io_error(what: str, path: Path, exc: OSError) -> ExportError:
    if exc.errno in _DISK_FULL:
        return ExportError(
            f"disk full writing {path}: {what}; what was placed so far is listed in "
            f"{MANIFEST}; free space (or export to another disk) and run again, it goes on "
            "where it stopped"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExportError(
            f"{path} is not writable ({exc.strerror}): export to a folder you may write, "
            "or run as the station's user"
        )
    return ExportError(f"cannot write {path}: {exc.strerror or exc}; {what}")


def prepare_out(out: Path) -> None:
    """``OUT`` exists (made when its parent does) and is a writable folder."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file, not a folder: name a folder to export into")
    if not out.parent.is_dir():
        raise ExportError(
            f"no such folder {out.parent}: create it first, or name a folder that exists"
        )
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise _io_error("making the export folder", out, exc) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise ExportError(
            f"{out} is not writable: export to a folder you may write, or run as the station's user"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(source: Path, target: Path, link: bool) -> bool:
    """``source`` at ``target``, whole or not at all: a hard link when ``link`` (the
    same filesystem; refused links fall back to a copy), else a copy to a temporary
    name renamed into place. True when linked."""
    files.make_dirs_durably(target.parent)
    tmp = target.with_name(f".{target.name}.{os.urandom(4).hex()}.tmp")
    try:
        if link:
            try:
                os.link(source, tmp)
                os.replace(tmp, target)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EACCES, errno.EXDEV, errno.EMLINK):
                    raise
        shutil.copyfile(source, tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _check_space(out: Path, need: int) -> None:
    free = shutil.disk_usage(out).free
    if need > free:
        raise ExportError(
            f"not enough free space in {out}: the new photos need {need / MIB:.1f} MB, "
            f"{free / MIB:.1f} MB is free; nothing was copied. Free space or export to "
            "another disk"
        )


def write(out: Path, selection: Selection, photos_root: Path) -> Summary:
    """Place the selected photos under ``out`` (module docstring) and write the
    manifest and each product's groups.csv. A photo file missing on the disk is reported
    and skipped. On the photos' own filesystem the photos are hard-linked (no space
    taken); elsewhere the copies must fit the free space before any is made."""
    if out.resolve().is_relative_to(photos_root.resolve()):
        raise ExportError(
            f"{out} is inside the station's photo folder {photos_root}, whose clean-up at "
            "start removes photo files it has no row for: export somewhere else"
        )
    prepare_out(out)
    before = read_manifest(out)
    listed = {r["photo_id"] for r in before}
    p = plan(selection, before)
    summary = Summary(out, unconfirmed=selection.unconfirmed)
    summary.skipped = [s for s in selection.skipped if s.photo_id not in listed]
    summary.already = len(p.kept)
    if p.new and not photos_root.is_dir():
        raise ExportError(
            f"the photo folder {photos_root} does not exist: check [camera] photos_dir in "
            "the station config (--config)"
        )
    link = photos_root.is_dir() and photos_root.stat().st_dev == out.stat().st_dev
    for i in (i for i in p.new if i.released):
        summary.skipped.append(Skipped(i.photo_id, i.lot_id, i.product, i.grade, Skip.RETENTION))
    sources = [(i, photos_root / i.source) for i in p.new if not i.released]
    present = [(i, s) for i, s in sources if s.is_file()]
    for i, _ in (x for x in sources if not x[1].is_file()):
        summary.skipped.append(Skipped(i.photo_id, i.lot_id, i.product, i.grade, Skip.MISSING))
    if not link:
        _check_space(out, sum(s.stat().st_size for _, s in present))

    # the manifest says what is on the disk at every step: written however the run ends
    rows = {r["photo_id"]: r for r in before}
    why = {s.photo_id: s.reason for s in selection.skipped}
    try:
        for row in p.withdrawn:
            (out / row["file"]).unlink(missing_ok=True)
            del rows[row["photo_id"]]
            summary.withdrawn.append({**row, "reason": why[row["photo_id"]].value})
        for row, item in p.moved:
            target = out / item.product / item.file
            if (out / row["file"]).is_file():
                files.make_dirs_durably(target.parent)
                os.replace(out / row["file"], target)
            rows[item.photo_id] = item.manifest_row(row["sha256"])
            summary.moved.append(
                {
                    "photo_id": item.photo_id,
                    "from": row["file"],
                    "to": f"{item.product}/{item.file}",
                }
            )
        for item, source in present:
            try:
                digest = _sha256(source)
                summary.linked += _place(source, out / item.product / item.file, link)
            except FileNotFoundError:  # retention or a person removed it meanwhile
                summary.skipped.append(
                    Skipped(item.photo_id, item.lot_id, item.product, item.grade, Skip.MISSING)
                )
                continue
            rows[item.photo_id] = item.manifest_row(digest)
            summary.added[(item.product, item.grade)] += 1
    except OSError as exc:
        raise _io_error("placing the photos", out, exc) from exc
    finally:
        _write_lists(out, list(rows.values()), before)
    summary.total = Counter((r["product"], r["grade"]) for r in rows.values())
    return summary


def _write_lists(out: Path, rows: list[dict[str, str]], before: list[dict[str, str]]) -> None:
    """manifest.csv and every product's groups.csv from ``rows``, each atomically (a
    product whose photos were all taken out keeps an empty groups.csv)."""
    rows.sort(key=lambda r: (r["product"], r["grade"], r["taken_at"], r["photo_id"]))
    groups: dict[str, list[tuple[str, str]]] = {r["product"]: [] for r in before}
    groups |= groups_rows(rows)
    try:
        for product, entries in groups.items():
            files.make_dirs_durably(out / product)
            files.write_atomic(out / product / GROUPS, _csv(("file", "group"), entries))
        manifest = _csv(MANIFEST_COLUMNS, ([r[k] for k in MANIFEST_COLUMNS] for r in rows))
        files.write_atomic(out / MANIFEST, manifest)
    except OSError as exc:
        raise _io_error("writing the lists", out, exc) from exc


def export(
    db_path: Path,
    photos_root: Path,
    out: Path,
    tz: tzinfo,
    filters: Filters = Filters(),
) -> Summary:
    """``edge grade dataset export``: read the station, choose, write."""
    selection = select(read_station(db_path), tz, filters)
    return write(out, selection, photos_root)
