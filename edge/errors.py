"""The one shape of a refusal the station explains to staff."""

from __future__ import annotations


class StaffError(Exception):
    """Something the station will not do, and what to do about it: a ``code`` for
    programs, ``message`` in Vietnamese (shown to staff first), ``message_en`` in
    English, and the HTTP ``status`` the API answers with."""

    default_status = 409

    def __init__(self, code: str, message: str, message_en: str, status: int | None = None) -> None:
        super().__init__(message_en)
        self.code = code
        self.message = message
        self.message_en = message_en
        self.status = self.default_status if status is None else status
