"""A small, strict ESC/POS decoder for tests.

It understands the commands python-escpos emits for labels, text, QR codes and barcodes,
and raises ValueError naming the offset on anything else (an unknown command, a stray
control byte, a truncated command), so garbage cannot pass a test silently.

Raster images (GS v 0) come back as PIL mode "1" images where black (0) is a printed dot;
directly consecutive raster blocks of equal width (python-escpos splits tall images) are
stacked into one image. Double-width/height raster modes are scaled up accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
LF, CR, HT = 0x0A, 0x0D, 0x09

# ESC x / GS x commands with a fixed number of argument bytes
_ESC_FIXED = {
    b"@": 0,  # initialise
    b"2": 0,  # default line spacing
    b"3": 1,  # line spacing n dots
    b"a": 1,  # justification
    b"d": 1,  # print and feed n lines
    b"J": 1,  # print and feed n dots
    b"!": 1,  # print mode
    b"E": 1,  # emphasis
    b"G": 1,  # double strike
    b"-": 1,  # underline
    b"M": 1,  # character font
    b"t": 1,  # code page
    b"R": 1,  # international character set
    b"{": 1,  # upside down
    b"V": 1,  # 90 degree rotation
    b" ": 1,  # right-side character spacing
    b"=": 1,  # select peripheral device
    b"$": 2,  # absolute print position
    b"\\": 2,  # relative print position
    b"B": 2,  # buzzer (n, t)
    b"p": 3,  # cash drawer pulse (m, t1, t2)
    b"i": 0,  # partial cut (legacy)
    b"m": 0,  # partial cut (legacy)
}
_GS_FIXED = {
    b"!": 1,  # character size
    b"B": 1,  # white/black reverse
    b"b": 1,  # smoothing
    b"H": 1,  # barcode HRI position
    b"f": 1,  # barcode HRI font
    b"h": 1,  # barcode height
    b"w": 1,  # barcode module width
    b"L": 2,  # left margin (nL nH)
    b"W": 2,  # print area width (nL nH)
    b"a": 1,  # automatic status back
    b"r": 1,  # transmit status
}


@dataclass
class Decoded:
    images: list[Image.Image] = field(default_factory=list)
    qr_payloads: list[bytes] = field(default_factory=list)
    barcodes: list[tuple[int, bytes]] = field(default_factory=list)  # (GS k m, data)
    cuts: int = 0
    feeds: int = 0  # lines fed: LF and ESC d n
    feed_dots: int = 0  # dots fed: ESC J n
    inits: int = 0  # ESC @
    text: bytes = b""  # printable bytes, plus b"\n" for each LF ending a line with text
    commands: list[str] = field(default_factory=list)  # names in order, e.g. "GS v 0"


class _Parser:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.out = Decoded()
        self.text = bytearray()
        self.line_has_text = False
        self.raster_run: list[Image.Image] = []

    def take(self, n: int, start: int, name: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated {name} at offset {start}: needs {n} more byte(s)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def flush_raster(self) -> None:
        if not self.raster_run:
            return
        width = self.raster_run[0].width
        stacked = Image.new("1", (width, sum(im.height for im in self.raster_run)), 1)
        y = 0
        for im in self.raster_run:
            stacked.paste(im, (0, y))
            y += im.height
        self.out.images.append(stacked)
        self.raster_run = []

    def run(self) -> Decoded:
        while self.pos < len(self.data):
            start = self.pos
            byte = self.data[self.pos]
            self.pos += 1
            if byte == ESC:
                name = self.esc(start)
            elif byte == GS:
                name = self.gs(start)
            elif byte == DLE:
                name = self.dle(start)
            elif byte == LF:
                name = "LF"
                self.out.feeds += 1
                if self.line_has_text:
                    self.text.append(LF)
                self.line_has_text = False
            elif byte == CR:
                name = "CR"
            elif byte == HT or (byte >= 0x20 and byte != 0x7F):
                self.text.append(byte)
                self.line_has_text = True
                self.flush_raster()  # text between raster blocks separates the images
                continue
            else:
                raise ValueError(f"unknown control byte 0x{byte:02x} at offset {start}")
            if name != "GS v 0":
                self.flush_raster()
            self.out.commands.append(name)
        self.flush_raster()
        self.out.text = bytes(self.text)
        return self.out

    def esc(self, start: int) -> str:
        cmd = self.take(1, start, "ESC command")
        name = f"ESC {cmd.decode('latin-1')}"
        if cmd not in _ESC_FIXED:
            raise ValueError(f"unknown command {name!r} (0x{cmd[0]:02x}) at offset {start}")
        args = self.take(_ESC_FIXED[cmd], start, name)
        if cmd == b"@":
            self.out.inits += 1
        elif cmd == b"d":
            self.out.feeds += args[0]
        elif cmd == b"J":
            self.out.feed_dots += args[0]
        elif cmd in (b"i", b"m"):
            self.out.cuts += 1
        return name

    def gs(self, start: int) -> str:
        cmd = self.take(1, start, "GS command")
        name = f"GS {cmd.decode('latin-1')}"
        if cmd in _GS_FIXED:
            self.take(_GS_FIXED[cmd], start, name)
        elif cmd == b"V":
            self.cut(start)
        elif cmd == b"v":
            self.raster(start)
            name = "GS v 0"
        elif cmd == b"(":
            name = self.gs_paren(start)
        elif cmd == b"k":
            self.barcode(start)
        else:
            raise ValueError(f"unknown command {name!r} (0x{cmd[0]:02x}) at offset {start}")
        return name

    def dle(self, start: int) -> str:
        cmd = self.take(1, start, "DLE command")
        if cmd not in (b"\x04", b"\x05"):  # DLE EOT n (status), DLE ENQ n (request)
            raise ValueError(f"unknown command DLE 0x{cmd[0]:02x} at offset {start}")
        self.take(1, start, "DLE EOT/ENQ")
        return "DLE EOT" if cmd == b"\x04" else "DLE ENQ"

    def cut(self, start: int) -> None:
        m = self.take(1, start, "GS V")[0]
        if m in (0, 1, 48, 49):
            pass
        elif m in (65, 66, 97, 98, 103, 104):  # these carry a feed amount n
            self.take(1, start, "GS V m n")
        else:
            raise ValueError(f"GS V with unknown mode {m} at offset {start}")
        self.out.cuts += 1

    def raster(self, start: int) -> None:
        if self.take(1, start, "GS v 0") != b"0":
            raise ValueError(f"GS v not followed by '0' at offset {start}")
        m, xl, xh, yl, yh = self.take(5, start, "GS v 0 header")
        if m not in (0, 1, 2, 3, 48, 49, 50, 51):
            raise ValueError(f"GS v 0 with unknown mode {m} at offset {start}")
        width_bytes, height = xl + 256 * xh, yl + 256 * yh
        if width_bytes == 0 or height == 0:
            raise ValueError(f"empty GS v 0 image at offset {start}")
        bits = self.take(width_bytes * height, start, "GS v 0 data")
        # raster bit 1 = printed; PIL "1" bit 1 = white: invert
        img = Image.frombytes("1", (width_bytes * 8, height), bits.translate(_INVERT))
        if m & 1 or m & 2:
            w = img.width * (2 if m & 1 else 1)
            h = img.height * (2 if m & 2 else 1)
            img = img.resize((w, h), Image.Resampling.NEAREST)
        if self.raster_run and self.raster_run[-1].width != img.width:
            self.flush_raster()
        self.raster_run.append(img)

    def gs_paren(self, start: int) -> str:
        fn_class = self.take(1, start, "GS (")
        name = f"GS ( {fn_class.decode('latin-1')}"
        if fn_class != b"k":
            raise ValueError(f"unknown command {name!r} at offset {start}")
        pl, ph = self.take(2, start, name)
        body = self.take(pl + 256 * ph, start, name)
        if len(body) < 2:
            raise ValueError(f"{name} without cn/fn at offset {start}")
        cn, fn = body[0], body[1]
        if cn == 49 and fn == 80:  # QR code: store data (function 180), m=48 then data
            if body[2:3] != b"0":
                raise ValueError(f"QR store-data with m={body[2:3]!r} at offset {start}")
            self.out.qr_payloads.append(body[3:])
        return f"{name} {cn}/{fn}"

    def barcode(self, start: int) -> None:
        m = self.take(1, start, "GS k")[0]
        if m <= 6:  # function A: data ends with NUL
            end = self.data.find(b"\x00", self.pos)
            if end < 0:
                raise ValueError(f"GS k (m={m}) data without NUL terminator at offset {start}")
            data = self.data[self.pos : end]
            self.pos = end + 1
        elif 65 <= m <= 79:  # function B: length byte then data
            n = self.take(1, start, "GS k length")[0]
            data = self.take(n, start, "GS k data")
        else:
            raise ValueError(f"GS k with unknown barcode system {m} at offset {start}")
        self.out.barcodes.append((m, data))


_INVERT = bytes(255 - i for i in range(256))


def decode(data: bytes) -> Decoded:
    """Decode an ESC/POS byte stream; ValueError names the offset of anything unknown."""
    return _Parser(data).run()
