"""``edge scan IMAGE``: the QR and Code 128 codes in a photo, one per line or as JSON.

Exit status, as grep's: 0 when at least one code was read, 1 when the picture holds none,
2 when the file cannot be read as a picture (missing, a directory, not an image).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.camera.scan import ScanError, scan_file

EXIT_FOUND, EXIT_NONE, EXIT_UNREADABLE = 0, 1, 2


def cmd_scan(args: argparse.Namespace) -> int:
    try:
        codes = scan_file(args.image)
    except ScanError as exc:
        print(f"edge scan: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.plain:
        for code in codes:
            print(f"{code.format}\t{code.text}")
    else:
        print(json.dumps([c.to_json() for c in codes], ensure_ascii=False, indent=2))
    if not codes:
        print(f"edge scan: no QR or Code 128 code found in {args.image}", file=sys.stderr)
        return EXIT_NONE
    return EXIT_FOUND


def add_scan_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = sub.add_parser(
        "scan",
        help="read the QR and Code 128 codes in a photo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read the QR and Code 128 codes in a camera photo (PNG, JPEG, BMP, "
        "TIFF, WebP)\nwith zxing-cpp, OpenCV as fallback. Prints a JSON list of {format, text, "
        "corners, decoder}\n([] when none is found), or with --plain FORMAT<TAB>TEXT per code.\n\n"
        "exit status: 0 codes read, 1 none in the picture, 2 not a readable picture",
    )
    scan.add_argument("image", type=Path, help="the photo")
    scan.add_argument(
        "--json", action="store_true", help="print the JSON list (the default; kept for scripts)"
    )
    scan.add_argument("--plain", action="store_true", help="print FORMAT<TAB>TEXT lines instead")
    scan.set_defaults(func=cmd_scan)
