"""The handover service the station builds as ``station.handover`` (issue 14,
docs/handover.md). The web layer (edge.web.handover_api) calls it; it calls storage
(edge.storage.handover), the verdict (edge.handover.verdict), the site's QR key, the
accounts (the courier's PIN) and the camera's decoder.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from edge.accounts.people import AccountError, People
from edge.accounts.people import Person as Account
from edge.camera.scan import scan as decode_codes
from edge.errors import StaffError
from edge.handover.reconcile import Expected, Reconciliation
from edge.handover.verdict import Parsed, messages, parse
from edge.printer.kinds import LabelDataError, parse_label_data
from edge.printer.payload import PayloadSigner
from edge.storage import handover as db_handover
from edge.storage.handover import Closing, HandoverRefused
from edge.storage.print_queue import PrintQueue
from edge.storage.store import Store

MAX_SIGNATURE = 200_000  # bytes of the signature PNG
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPRINT_REASON = "In lại biên bản bàn giao"


class Person(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


def _not_yours() -> HandoverRefused:
    return HandoverRefused(
        "not_your_handover",
        "Đây là lượt bàn giao của người giao hàng khác.",
        "This handover belongs to another courier.",
        403,
    )


def signature_png(data_url: str) -> bytes:
    """The PNG of a ``data:image/png;base64,...`` signature, at most 200 kB."""
    prefix = "data:image/png;base64,"
    if len(data_url) > (MAX_SIGNATURE * 4) // 3 + len(prefix) + 8:
        raise _signature_too_large()
    if not data_url.startswith(prefix):
        raise _bad_signature()
    try:
        png = base64.b64decode(data_url[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise _bad_signature() from None
    if len(png) > MAX_SIGNATURE:
        raise _signature_too_large()
    if not png.startswith(PNG_MAGIC):
        raise _bad_signature()
    return png


def _bad_signature() -> HandoverRefused:
    return HandoverRefused(
        "bad_signature_image",
        "Chữ ký không đọc được (cần ảnh PNG). Ký lại.",
        "The signature is not a PNG image; sign again.",
        422,
    )


def _signature_too_large() -> HandoverRefused:
    return HandoverRefused(
        "signature_too_large",
        "Ảnh chữ ký quá lớn (tối đa 200 kB). Xóa và ký lại.",
        "The signature image is too large (at most 200 kB); clear it and sign again.",
        413,
    )


def manifest_data(
    handover_id: str,
    site_name: str,
    carrier: str,
    courier: str,
    staff: str,
    at: datetime,
    parcels: list[Expected],
) -> dict[str, Any]:
    """The manifest's print data (edge.printer.kinds.ManifestData), checked: carrier,
    courier, the station's staff, the time, every parcel's tracking number, weight and COD
    (the totals and the signed QR of the handover id are the layout's)."""
    data = {
        "batch_id": handover_id,
        "collection_point": site_name,
        "courier": carrier,
        "courier_staff": courier,
        "staff": staff,
        "handed_over_at": at.isoformat(),
        "parcels": [
            {"tracking_code": e.tracking, "weight_g": e.gross_g, "cod_dong": e.cod_dong}
            for e in parcels
        ],
    }
    parse_label_data("manifest", data)
    return data


class Handovers:
    def __init__(
        self,
        store: Store,
        site_name: str,
        signer: Callable[[], PayloadSigner],
        tz: Any,
        printed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.site_name = site_name
        self.signer = signer  # the site's id and key (created on first use)
        self.tz = tz
        self.printed = printed  # wakes the printer: a manifest was queued

    # -- reading ---------------------------------------------------------------------

    def carriers(self) -> list[dict[str, Any]]:
        return db_handover.carriers(self.store)

    def _view(self, row: dict[str, Any], rec: Reconciliation) -> dict[str, Any]:
        return {
            "id": row["id"],
            "carrier": row["carrier"],
            "courier": {"id": row["courier_id"], "name": row["courier_name"]},
            "status": row["status"],
            "opened_at": row["opened_at"],
            "closed_at": row["closed_at"],
            "expected": rec.expected,
            "extra": rec.extra,
            "counts": rec.counts,
            "scanned_g": rec.scanned_g,
            "scanned_cod_dong": rec.scanned_cod_dong,
            "expected_g": rec.expected_g,
            "expected_cod_dong": rec.expected_cod_dong,
            "missing_confirmed": rec.missing_confirmed,
            "manifest_job_id": row["manifest_job_id"],
        }

    def _mine(self, handover_id: str, person: Person) -> tuple[dict[str, Any], Reconciliation]:
        row, rec = db_handover.state(self.store, handover_id)
        if person.role != "lead" and row["courier_id"] != person.id:
            raise _not_yours()
        return row, rec

    def get(self, handover_id: str, person: Person) -> dict[str, Any]:
        return self._view(*self._mine(handover_id, person))

    def of_day(self, day: str) -> list[dict[str, Any]]:
        """The handovers opened on the station-local ``day`` (YYYY-MM-DD)."""
        try:
            start = datetime.combine(datetime.strptime(day, "%Y-%m-%d").date(), time(), self.tz)
        except ValueError:
            raise StaffError(
                "bad_day", "Ngày không hợp lệ (YYYY-MM-DD).", "A day is YYYY-MM-DD.", 422
            ) from None
        rows = db_handover.of_day(self.store, start, start + timedelta(days=1))
        return [
            {"id": r["id"], "carrier": r["carrier"],
             "courier": {"id": r["courier_id"], "name": r["courier_name"]},
             "status": r["status"], "opened_at": r["opened_at"], "closed_at": r["closed_at"],
             "count": r["count"], "total_g": r["total_g"], "cod_dong": r["cod_dong"],
             "missing": r["missing"], "manifest_job_id": r["manifest_job_id"]}
            for r in rows
        ]  # fmt: skip

    # -- opening ---------------------------------------------------------------------

    def open(
        self, carrier: str, person: Person, courier_id: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """The open handover of ``carrier`` (resumed) or a new one; True when new. A lead
        may open it for a courier (``courier_id``); otherwise the courier is the caller."""
        courier: Person = person
        if courier_id is not None and courier_id != person.id:
            if person.role != "lead":
                raise HandoverRefused(
                    "courier_id_lead_only",
                    "Chỉ trưởng điểm được mở lượt bàn giao cho người khác.",
                    "Only a lead may open a handover for someone else.",
                    403,
                )
            courier = self._courier(courier_id)
        hid, new = db_handover.open_handover(self.store, carrier, courier, person)
        row, rec = db_handover.state(self.store, hid)
        if not new and person.role != "lead" and row["courier_id"] != person.id:
            raise _not_yours()
        return self._view(row, rec), new

    def _courier(self, person_id: str) -> Person:
        rows = self.store.rows(
            "SELECT id, name, role, disabled FROM people WHERE id = ?", (person_id,)
        )
        if not rows or rows[0]["role"] != "courier" or rows[0]["disabled"]:
            raise HandoverRefused(
                "not_a_courier",
                "Người được chọn không phải người giao hàng (hoặc đã bị khóa).",
                "The person chosen is not an active courier.",
                422,
            )
        return Account(rows[0]["id"], rows[0]["name"], rows[0]["role"])

    # -- scanning --------------------------------------------------------------------

    def parse(self, code: str) -> Parsed:
        signer = self.signer()
        return parse(code, signer.site, signer.key)

    def _answer(self, scanned: db_handover.Scanned) -> dict[str, Any]:
        vi, en = messages(scanned.verdict, scanned.tracking)
        return {
            "verdict": scanned.verdict,
            "tracking": scanned.tracking,
            "message": vi,
            "message_en": en,
            **scanned.reconciliation.totals(),
        }

    def scan(self, handover_id: str, code: str, source: str, person: Person) -> dict[str, Any]:
        self._mine_row(handover_id, person)
        found = db_handover.record_scan(
            self.store, handover_id, code, source, self.parse(code), person
        )
        return self._answer(found)

    def _mine_row(self, handover_id: str, person: Person) -> None:
        if person.role == "lead":
            return
        rows = self.store.rows("SELECT courier_id FROM handovers WHERE id = ?", (handover_id,))
        if rows and rows[0]["courier_id"] != person.id:
            raise _not_yours()

    def scan_frame(
        self, handover_id: str, frame: Any, source: str, person: Person
    ) -> dict[str, Any]:
        """Every code found in a photo, scanned in turn; the QR and the Code 128 of one
        label count once (the first read of a tracking number)."""
        self._mine_row(handover_id, person)
        codes = decode_codes(frame)
        codes.sort(key=lambda c: c.format != "QRCode")  # a signed QR says the most
        seen: set[str] = set()
        results = []
        for code in codes:
            parsed = self.parse(code.text)
            if parsed.tracking is not None:
                if parsed.tracking in seen:
                    continue
                seen.add(parsed.tracking)
            found = db_handover.record_scan(
                self.store, handover_id, code.text[:512], source, parsed, person
            )
            results.append(self._answer(found))
        if not results:
            raise HandoverRefused(
                "no_code",
                "Không thấy mã vạch hay mã QR nào trong ảnh. Chụp gần hơn, đủ sáng, giữ yên.",
                "No barcode or QR code found in the photo. Get closer, with light, hold still.",
                400,
            )
        return {"results": results}

    def undo(self, handover_id: str, person: Person) -> dict[str, Any]:
        self._mine_row(handover_id, person)
        db_handover.undo(self.store, handover_id, person)
        return self.get(handover_id, person)

    def confirm_missing(self, handover_id: str, reason: str, person: Person) -> dict[str, Any]:
        db_handover.confirm_missing(self.store, handover_id, reason, person)
        return self.get(handover_id, person)

    # -- closing ---------------------------------------------------------------------

    def _check_pin(self, row: dict[str, Any], pin: str) -> None:
        """The courier's own PIN, checked by the accounts (wrong PINs count towards the
        lock-out as at sign-in). A wrong one is 403, not 401: the session stays."""
        try:
            People(self.store).confirm_pin(row["courier_id"], pin)
        except AccountError as exc:
            raise HandoverRefused(exc.code, exc.message, exc.message_en, 403) from None

    def _manifest(
        self, row: dict[str, Any], parcels: list[Expected], at: datetime, person: db_handover.Person
    ) -> dict[str, Any]:
        try:
            return manifest_data(
                row["id"], self.site_name, row["carrier"], row["courier_name"], person.name,
                at, parcels,
            )  # fmt: skip
        except LabelDataError as exc:
            raise HandoverRefused(
                "manifest_invalid",
                f"Không in được biên bản bàn giao: {exc}. Báo văn phòng.",
                f"The manifest cannot be printed: {exc}.",
            ) from None

    def close(
        self,
        handover_id: str,
        person: Person,
        pin: str | None = None,
        signature: str | None = None,
    ) -> dict[str, Any]:
        """Close with the courier's PIN or a signature (exactly one of them)."""
        row, _ = self._mine(handover_id, person)
        if (pin is None) == (signature is None):
            raise HandoverRefused(
                "confirm_needed",
                "Người giao hàng xác nhận bằng mã PIN hoặc chữ ký.",
                "The courier confirms with their PIN or a signature.",
                422,
            )
        if pin is not None:
            self._check_pin(row, pin)
            closing = Closing("pin", None)
        else:
            assert signature is not None
            closing = Closing("signature", signature_png(signature))
        db_handover.close(self.store, handover_id, person, closing, self._manifest)
        self.printed()
        return self.get(handover_id, person)

    def reprint(self, handover_id: str, person: Person) -> dict[str, Any]:
        """A copy of the manifest ("BẢN SAO" once it printed)."""
        row, _ = self._mine(handover_id, person)
        if row["manifest_job_id"] is None:
            raise HandoverRefused(
                "handover_open",
                "Lượt bàn giao chưa kết thúc: chưa có biên bản để in lại.",
                "The handover is not closed yet: there is no manifest to reprint.",
            )
        jobs = self.store.rows(
            "SELECT id FROM print_jobs WHERE record_id = ? AND kind = 'manifest' "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (handover_id,),
        )
        try:
            job_id = PrintQueue(self.store).requeue(jobs[0]["id"], person.name, REPRINT_REASON)
        except ValueError:
            raise HandoverRefused(
                "manifest_printing",
                "Biên bản đang chờ in. Xem máy in trước khi in lại.",
                "The manifest is still waiting to print. Check the printer first.",
            ) from None
        self.printed()
        return {"job_id": job_id, "copy": job_id != jobs[0]["id"], "handover_id": handover_id}

    def return_parcel(self, parcel_id: str, reason: str, person: Person) -> dict[str, Any]:
        return db_handover.return_parcel(self.store, parcel_id, reason, person)
