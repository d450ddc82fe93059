"""From rendered label to printer: ESC/POS bytes, raw TCP to a fake printer, the simulated
file printer, and the strict decoder the other tests rely on."""

from __future__ import annotations

import io
import random
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from escpos.capabilities import get_profile
from escpos.printer import Dummy
from PIL import Image

from edge.printer.escpos_out import as_raster, preview_png, raster_to_escpos
from edge.printer.label import render_label
from edge.printer.payload import PayloadSigner, verify
from edge.printer.transport import FileTransport, NetworkTransport, PrinterUnavailable, Transport
from rigs.escpos_decode import decode
from rigs.printer_listener import PrinterListener

LOT_ID = "0190a6f2-7c3e-7abc-9def-0123456789ab"
ICT = timezone(timedelta(hours=7))
KEY = bytes(range(32))
LABEL: dict[str, Any] = {
    "collection_point": "Điểm thu gom Sìn Hồ",
    "farmer": "Nguyễn Thị Hoà – Bản Phìn Hồ",
    "product": "Sâm Lai Châu",
    "net_g": 500,
    "recorded_at": datetime(2026, 11, 23, 10, 38, tzinfo=UTC),
    "lot_id": LOT_ID,
    "seq": 7,
}


def render_lot_label(data: dict[str, Any], width: int = 384, *, tz: tzinfo) -> Image.Image:
    return render_label("lot", data, width, signer=PayloadSigner("sin-ho", KEY), tz=tz)


def lot_ids(texts: list[str]) -> list[str]:
    """The lot ids in the signed QR payloads read back."""
    return [verify(text, KEY).ref for text in texts]


@pytest.fixture
def listener() -> Iterator[PrinterListener]:
    with PrinterListener() as printer:
        yield printer


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("1").tobytes() == b.convert("1").tobytes()


def qr_texts(img: Image.Image) -> list[str]:
    results = zxingcpp.read_barcodes(img)
    return [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]


@pytest.mark.parametrize("width", [384, 576])
def test_label_job_over_tcp_prints_exactly_the_preview(
    width: int, listener: PrinterListener, capsys: pytest.CaptureFixture[str]
) -> None:
    img = render_lot_label(LABEL, width, tz=ICT)
    data, png = raster_to_escpos(img), preview_png(img)
    assert capsys.readouterr().out == "", "python-escpos must not print anything"

    transport: Transport = NetworkTransport("127.0.0.1", listener.port, timeout_s=2.0)
    transport.send("job-1", data, png)
    (job,) = listener.wait_for_jobs(1, timeout=5)
    assert job == data

    decoded = decode(job)
    assert decoded.commands[0] == "ESC @" and decoded.commands[-1] == "GS V"
    assert decoded.cuts == 1 and decoded.inits == 1 and decoded.feeds >= 3
    assert decoded.text == b"" and decoded.qr_payloads == [] and decoded.barcodes == []
    (printed,) = decoded.images
    assert printed.width == width
    assert same_pixels(printed, img)
    with Image.open(io.BytesIO(png)) as preview:
        assert same_pixels(printed, preview)
    assert lot_ids(qr_texts(printed)) == [LOT_ID]


def test_tall_label_is_split_into_raster_blocks_and_stacked_back() -> None:
    img = render_lot_label({**LABEL, "farmer": "Giàng Thị Mỷ " * 40}, 384, tz=ICT)
    assert img.height > 960  # python-escpos sends at most 960 rows per GS v 0
    decoded = decode(raster_to_escpos(img))
    assert decoded.commands.count("GS v 0") == -(-img.height // 960)
    (printed,) = decoded.images
    assert same_pixels(printed, img)
    assert lot_ids(qr_texts(printed)) == [LOT_ID]


def test_any_image_prints_unscaled_uncentred_and_profile_stays_shared_clean() -> None:
    rng = random.Random(7)
    noise = Image.frombytes("1", (200, 50), rng.randbytes(200 // 8 * 50))  # narrower than paper
    gray = Image.linear_gradient("L").resize((96, 40))
    for img in (noise, gray):
        (printed,) = decode(raster_to_escpos(img)).images
        assert same_pixels(printed, as_raster(img))
        with Image.open(io.BytesIO(preview_png(img))) as preview:
            assert same_pixels(preview, printed)
    # the width we give python-escpos lives on one job's profile, not the shared data
    assert get_profile("default").profile_data["media"]["width"]["pixels"] == "Unknown"


def test_refused_connection_is_unavailable_quickly_then_the_retry_prints(
    listener: PrinterListener,
) -> None:
    data = raster_to_escpos(render_lot_label(LABEL, tz=ICT))
    transport = NetworkTransport("127.0.0.1", listener.port, timeout_s=30.0)
    listener.stop()  # printer switched off: connects are refused
    started = time.monotonic()
    with pytest.raises(PrinterUnavailable) as err:
        transport.send("job-2", data, b"")
    # quickly: a third of the time-out, however loaded the machine (no waiting for it)
    assert time.monotonic() - started < 10, "a refusal waited for the 30 s time-out"
    message = str(err.value)
    assert f"printer 127.0.0.1:{listener.port} not reachable: connection refused" in message
    assert "check" in message and "\n" not in message

    listener.restart()  # back on, same port: the queued job goes through
    transport.send("job-2", data, b"")
    assert listener.wait_for_jobs(1, timeout=5) == [data]


def test_printer_not_answering_the_connect_times_out() -> None:
    with socket.socket() as server:  # accept queue of one, filled and never accepted:
        server.bind(("127.0.0.1", 0))  # further SYNs are dropped, the connect hangs
        server.listen(0)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            started = time.monotonic()
            with pytest.raises(PrinterUnavailable, match=r"not reachable: no answer within 0.3 s"):
                NetworkTransport("127.0.0.1", port, timeout_s=0.3).send("job-3", b"\x1b@", b"")
            # the time-out, not the kernel's ~2 min of SYN retries (bound: 30 time-outs)
            assert time.monotonic() - started < 30 * 0.3


def test_printer_that_stops_reading_mid_job_is_unavailable() -> None:
    data = raster_to_escpos(render_lot_label(LABEL, 576, tz=ICT))
    with PrinterListener(stall=True) as hung:
        started = time.monotonic()
        with pytest.raises(PrinterUnavailable, match=rf"printer 127.0.0.1:{hung.port} "):
            NetworkTransport("127.0.0.1", hung.port, timeout_s=0.5).send("job-4", data, b"")
        assert time.monotonic() - started < 30 * 0.5  # gave up, not hung (bound: 30 time-outs)
    assert hung.jobs == []


def test_unknown_host_is_unavailable() -> None:
    with pytest.raises(PrinterUnavailable, match="not reachable: host name not found"):
        NetworkTransport("printer.invalid", 9100, timeout_s=1.0).send("job-5", b"\x1b@", b"")


def test_listener_keeps_jobs_in_order_and_reports_missing_ones(listener: PrinterListener) -> None:
    transport = NetworkTransport("127.0.0.1", listener.port, timeout_s=2.0)
    for i in range(3):
        transport.send(f"job-{i}", b"\x1b@job %d\n" % i, b"")
        listener.wait_for_jobs(i + 1, timeout=5)
    assert listener.jobs == [b"\x1b@job 0\n", b"\x1b@job 1\n", b"\x1b@job 2\n"]
    with pytest.raises(TimeoutError, match="expected 4 print job"):
        listener.wait_for_jobs(4, timeout=0.1)


def test_file_transport_writes_bin_and_png_atomically(tmp_path: Path) -> None:
    img = render_lot_label(LABEL, 384, tz=ICT)
    data, png = raster_to_escpos(img), preview_png(img)
    transport: Transport = FileTransport(tmp_path / "prints")
    transport.send("0190a6f2-job", data, png)
    transport.send("0190a6f2-job", data, png)  # a retry overwrites, atomically

    folder = tmp_path / "prints"
    assert sorted(p.name for p in folder.iterdir()) == ["0190a6f2-job.bin", "0190a6f2-job.png"]
    assert (folder / "0190a6f2-job.bin").read_bytes() == data
    assert (folder / "0190a6f2-job.png").read_bytes() == png
    (printed,) = decode((folder / "0190a6f2-job.bin").read_bytes()).images
    assert same_pixels(printed, img)
    with Image.open(folder / "0190a6f2-job.png") as preview:
        assert same_pixels(preview, img)

    with pytest.raises(ValueError, match="safe file name"):
        transport.send("../escape", data, png)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(PrinterUnavailable, match="not writable"):
        FileTransport(blocker).send("job", data, png)


def test_decoder_reads_what_python_escpos_emits(capsys: pytest.CaptureFixture[str]) -> None:
    p = Dummy()
    p.hw("INIT")
    p.set(align="center", bold=True, double_height=True, underline=1, font="b", invert=True)
    p.text("Xin chao\n")
    p.line_spacing(40)
    p.line_spacing()
    p.qr("LOT-42", native=True)
    p.barcode("123456789012", "EAN13")
    p._raw(b"\x1dL\x00\x00\x1dW\x80\x01\x1bJ\x18\n\n")
    p.cut(feed=False)
    p.cut(mode="PART")
    capsys.readouterr()  # python-escpos prints "Using hardware barcode renderer"

    decoded = decode(p.output)
    assert decoded.text == b"Xin chao\n"
    assert decoded.qr_payloads == [b"LOT-42"]
    assert decoded.barcodes == [(2, b"123456789012")]
    assert decoded.cuts == 2 and decoded.feeds == 1 + 2 + 6 and decoded.feed_dots == 24
    assert decoded.images == []


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"\x1b@\x1bZ", 2),  # unknown ESC command
        (b"ok\x00", 2),  # stray control byte
        (b"\x1b@\x1dv0\x00\x01\x00\x05\x00\xff", 2),  # truncated raster data
        (b"\x1d(k\x06\x001P0ab", 0),  # truncated GS ( k (6 bytes announced)
        (b"\x1dV\x07", 0),  # unknown cut mode
        (b"\x1dk\x02123", 0),  # barcode without NUL
        (b"\x1b", 0),  # lone ESC
    ],
)
def test_decoder_rejects_garbage_naming_the_offset(data: bytes, offset: int) -> None:
    with pytest.raises(ValueError, match=rf"offset {offset}\b"):
        decode(data)


def test_decoder_stacks_only_adjacent_equal_width_raster_blocks() -> None:
    block = b"\x1dv0\x00\x01\x00\x02\x00\x80\x01"  # 8x2, two dots
    assert [im.size for im in decode(block + block).images] == [(8, 4)]
    assert [im.size for im in decode(block + b"\n" + block).images] == [(8, 2), (8, 2)]
    wide = b"\x1dv0\x00\x02\x00\x01\x00\xff\x00"
    assert [im.size for im in decode(block + wide).images] == [(8, 2), (16, 1)]
    (img,) = decode(block).images
    assert img.getpixel((0, 0)) == 0 and img.getpixel((7, 1)) == 0  # black = printed
    assert img.getpixel((1, 0)) != 0


def test_packed_raster_equals_python_escpos_image_output() -> None:
    """raster_to_escpos packs GS v 0 itself for speed; it must equal python-escpos's own."""
    import copy
    import random

    from escpos.printer import Dummy
    from PIL import Image

    from edge.printer.escpos_out import raster_to_escpos

    rng = random.Random(7)
    for width, height in ((8, 1), (200, 37), (384, 960), (384, 961), (576, 2000)):
        img = Image.frombytes("1", (width, height), rng.randbytes((width + 7) // 8 * height))
        printer = Dummy(profile="default")
        data = copy.deepcopy(printer.profile.profile_data)
        data["media"]["width"]["pixels"] = width
        printer.profile.profile_data = data
        printer.hw("INIT")
        printer.image(
            img,
            impl="bitImageRaster",
            high_density_vertical=True,
            high_density_horizontal=True,
            center=False,
        )
        printer.cut(mode="FULL", feed=True)
        assert raster_to_escpos(img) == printer.output, (width, height)
