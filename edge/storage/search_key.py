"""The farmer search key: names, villages and phone numbers as staff type them.

Pure functions (text in, text out). Staff type "huong" for "Hương", "dung" for "Dũng",
"0987 654" or "+84 987" for "0987.654.321", and expect the same farmer. So a name or a
village is folded: Unicode NFD, combining marks dropped, đ/Đ read as d, lower case,
anything that is not a letter or a digit read as a space, runs of spaces collapsed. A
phone number keeps its digits only, in the national form (+84 987… is 0987…).

A producer's key (:func:`producer_key`) is ``name|village|phone``: the three folded
parts, which never contain ``|``. It is kept in ``producers.search_key`` by triggers
(migration 0013) calling :func:`producer_key` as the SQLite function ``edge_search_key``
(registered on every station connection, edge.storage.db.connect), so every write of a
producer, wherever it is made, keeps its key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SEPARATOR = "|"

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_PHONE_TEXT = re.compile(r"^[0-9\s.+()\-]+$")


def fold(text: str | None) -> str:
    """A name or a village as compared and searched: "  Nguyễn  Thị HƯƠNG " and
    "nguyen thi huong" fold alike; so do "Đặng" and "dang"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    bare = bare.replace("đ", "d").replace("Đ", "D").lower()
    return _NOT_WORD.sub(" ", bare).strip()


def phone_digits(phone: str | None) -> str:
    """A phone number's digits in the national form: "+84 987.654.321", "0084987654321"
    and "0987 654 321" all read "0987654321"."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isascii() and ch.isdigit())
    if phone.lstrip().startswith("+") and digits.startswith("84"):
        return "0" + digits[2:]
    if digits.startswith("0084"):
        return "0" + digits[4:]
    if len(digits) == 11 and digits.startswith("84"):  # 84 + a 9-digit number, no plus
        return "0" + digits[2:]
    return digits


def producer_key(name: str | None, village: str | None, phone: str | None) -> str:
    """``name|village|phone``, each part folded (see the module's note)."""
    return SEPARATOR.join((fold(name), fold(village), phone_digits(phone)))


def duplicate_prefix(name: str | None, village: str | None) -> str:
    """The start every key of a farmer with this name and village has, whatever the
    phone: "nguyen thi huong|ban lac|"."""
    return fold(name) + SEPARATOR + fold(village) + SEPARATOR


@dataclass(frozen=True)
class Query:
    """What staff typed, ready to match keys: every term must occur in a key; a term is
    a tuple of alternatives (a bare "84987" is the digits as typed, or +84 987: "0987")."""

    terms: tuple[tuple[str, ...], ...]

    @property
    def empty(self) -> bool:
        return not self.terms

    @property
    def phrase(self) -> str:
        """The terms as typed, as one phrase ("thi huong"): a name holding it whole, at
        its start or at the start of a word, is the better match."""
        return " ".join(alternatives[0] for alternatives in self.terms)


def _digit_term(digits: str, plus: bool) -> tuple[str, ...]:
    if plus and digits.startswith("84"):
        return ("0" + digits[2:],)
    if digits.startswith("0084"):
        return ("0" + digits[4:],)
    if digits.startswith("84") and len(digits) > 2:
        return (digits, "0" + digits[2:])
    return (digits,)


def parse_query(text: str) -> Query:
    """A search as typed. Only digits and phone punctuation ("0987 654 321",
    "+84 987.654") is one phone fragment; anything else is words, each folded, each
    required (so "huong ban lac" narrows to Hương of Bản Lác)."""
    stripped = text.strip()
    if not stripped:
        return Query(())
    if _PHONE_TEXT.match(stripped) and any(ch.isdigit() for ch in stripped):
        digits = "".join(ch for ch in stripped if ch.isdigit())
        return Query((_digit_term(digits, stripped.startswith("+")),))
    terms: list[tuple[str, ...]] = []
    for word in fold(stripped).split():
        term = _digit_term(word, False) if word.isdigit() else (word,)
        if term not in terms:
            terms.append(term)
    return Query(tuple(terms))
