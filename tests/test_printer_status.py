"""DLE EOT real-time status: request bytes and reply parsing (pure tables)."""

from __future__ import annotations

import pytest

from edge.printer.status import (
    BLOCKING,
    UNKNOWN,
    Condition,
    Exchange,
    Paper,
    StatusReport,
    is_reply,
    parse,
    query,
    reply_bytes,
    request,
)


def test_requests_are_dle_eot_n() -> None:
    assert [request(n) for n in (1, 2, 3, 4)] == [
        b"\x10\x04\x01",
        b"\x10\x04\x02",
        b"\x10\x04\x03",
        b"\x10\x04\x04",
    ]
    for bad in (0, 5, 17):
        with pytest.raises(ValueError, match="1, 2, 3 or 4"):
            request(bad)


@pytest.mark.parametrize(
    ("byte", "shaped"),
    [
        (0x12, True),  # bit 1 and bit 4 set, bits 0 and 7 clear: a reply
        (0x16, True),
        (0x7E, True),  # every variable bit set
        (0x00, False),  # bit 1/4 missing
        (0x13, False),  # bit 0 set
        (0x92, False),  # bit 7 set
        (0x02, False),
        (0xFF, False),
    ],
)
def test_reply_shape(byte: int, shaped: bool) -> None:
    assert is_reply(byte) is shaped


# replies to DLE EOT 1, 2, 3, 4 -> condition, paper, cover_open, online
TABLE = [
    ({1: 0x12, 2: 0x12, 4: 0x12}, Condition.READY, Paper.OK, False, True),
    ({1: 0x12, 2: 0x12, 4: 0x1E}, Condition.READY, Paper.NEAR_END, False, True),  # bits 2-3
    ({1: 0x12, 2: 0x12, 4: 0x16}, Condition.READY, Paper.NEAR_END, False, True),  # bit 2 only
    ({1: 0x1A, 2: 0x32, 4: 0x7E}, Condition.PAPER_OUT, Paper.OUT, False, False),  # Epson
    ({1: 0x1A, 2: 0x32, 4: 0x32}, Condition.PAPER_OUT, Paper.OUT, False, False),  # bit 5 only
    ({1: 0x1A, 2: 0x32}, Condition.PAPER_OUT, Paper.OUT, False, False),  # EOT 2 bit 5 alone
    ({1: 0x1A, 2: 0x16, 4: 0x12}, Condition.COVER_OPEN, Paper.OK, True, False),
    ({1: 0x1A, 2: 0x52, 3: 0x32, 4: 0x12}, Condition.ERROR, Paper.OK, False, False),
    ({1: 0x1A, 2: 0x12, 4: 0x12}, Condition.OFFLINE, Paper.OK, False, False),
    ({1: None}, Condition.UNKNOWN, Paper.UNKNOWN, None, None),  # no answer
    ({1: 0x00, 2: 0xFF, 4: 0x01}, Condition.UNKNOWN, Paper.UNKNOWN, None, None),  # garbage
    ({1: 0x12, 2: None, 4: None}, Condition.READY, Paper.UNKNOWN, None, True),
]


@pytest.mark.parametrize(("replies", "condition", "paper", "cover", "online"), TABLE)
def test_parse_table(
    replies: dict[int, int | None],
    condition: Condition,
    paper: Paper,
    cover: bool | None,
    online: bool | None,
) -> None:
    report = parse(replies)
    assert report.condition is condition
    assert report.paper is paper
    assert report.cover_open is cover
    assert report.online is online
    assert report.blocks_printing is (condition in BLOCKING)


def test_error_cause_bits() -> None:
    report = parse({1: 0x1A, 2: 0x52, 3: 0x1A, 4: 0x12})
    assert report.cutter_error is True and report.unrecoverable_error is False
    assert parse({1: 0x1A, 2: 0x52, 3: 0x32}).unrecoverable_error is True
    assert parse({1: 0x1A, 2: 0x52, 3: 0x52}).recoverable_error is True


def test_unknown_is_never_fine() -> None:
    for report in (UNKNOWN, parse({}), parse({1: None, 2: None, 4: None})):
        assert report.condition is Condition.UNKNOWN
        assert report.paper is Paper.UNKNOWN
        assert not report.answered
        vi, en = report.message()
        assert "không biết" in vi and "unknown" in en
    assert not UNKNOWN.blocks_printing  # unknown does not stop printing, it is only said


@pytest.mark.parametrize(
    ("state", "condition"),
    [
        ({}, Condition.READY),
        ({"paper": Paper.NEAR_END}, Condition.READY),
        ({"paper": Paper.OUT}, Condition.PAPER_OUT),
        ({"cover_open": True}, Condition.COVER_OPEN),
        ({"error": True}, Condition.ERROR),
        ({"online": False}, Condition.OFFLINE),
    ],
)
def test_what_a_printer_answers_parses_back(state: dict[str, object], condition: Condition) -> None:
    replies = reply_bytes(**state)  # type: ignore[arg-type]
    assert all(is_reply(b) for b in replies.values())
    assert parse(dict(replies)).condition is condition


def _exchange(replies: dict[int, int | None], asked: list[int]) -> Exchange:
    def exchange(req: bytes) -> int | None:
        assert req[:2] == b"\x10\x04" and len(req) == 3
        asked.append(req[2])
        return replies.get(req[2])

    return exchange


def test_query_asks_1_2_4_and_3_only_on_error() -> None:
    asked: list[int] = []
    report = query(_exchange(dict(reply_bytes()), asked))
    assert asked == [1, 2, 4] and report.condition is Condition.READY
    asked.clear()
    report = query(_exchange(dict(reply_bytes(error=True)), asked))
    assert asked == [1, 2, 4, 3] and report.condition is Condition.ERROR


def test_query_stops_when_the_printer_does_not_answer() -> None:
    asked: list[int] = []
    report = query(_exchange({}, asked))
    assert asked == [1], "one time-out, not four"
    assert report.condition is Condition.UNKNOWN and report.replies == {1: None}
    asked.clear()
    report = query(_exchange({1: 0xFF}, asked))  # not a reply: noise
    assert asked == [1] and report.condition is Condition.UNKNOWN


def test_json_and_messages_for_staff() -> None:
    out = parse(dict(reply_bytes(paper=Paper.OUT))).as_json()
    assert out["condition"] == "paper_out" and out["paper"] == "out"
    assert "hết giấy" in str(out["message"]) and "out of paper" in str(out["message_en"])
    assert out["replies"] == {"1": "0x1a", "2": "0x32", "3": "0x12", "4": "0x7e"}
    near = parse(dict(reply_bytes(paper=Paper.NEAR_END)))
    assert "sắp hết" in near.message()[0]
    assert StatusReport().as_json()["condition"] == "unknown"
