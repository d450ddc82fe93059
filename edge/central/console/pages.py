"""Server-rendered pages: one Jinja2 environment (autoescaped), the console's two languages,
and :func:`render`.

Every area module registers its own strings (key -> Vietnamese, English) with
:func:`strings`; templates call ``t("key")``. The language is the ``lang`` cookie
(``vi`` unless it says ``en``), switched by GET /lang/<code>.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

LANGS = ("vi", "en")
_STRINGS: dict[str, tuple[str, str]] = {}

env = Environment(
    loader=PackageLoader("edge.central.console", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def strings(table: Mapping[str, tuple[str, str]]) -> None:
    """Adds ``key: (vi, en)`` texts; a key defined twice with other texts is a bug."""
    for key, texts in table.items():
        if _STRINGS.setdefault(key, texts) != texts:
            raise ValueError(f"console string {key!r} defined twice")


def lang_of(request: Request) -> str:
    lang = request.cookies.get("lang", "vi")
    return lang if lang in LANGS else "vi"


def translate(lang: str, key: str, **values: Any) -> str:
    texts = _STRINGS.get(key)
    if texts is None:
        return key
    text = texts[LANGS.index(lang)]
    return text.format(**values) if values else text


def grams(value: int | None) -> str:
    """1234567 g -> "1.234,6 kg" (Vietnamese: dot thousands, comma decimals)."""
    if value is None:
        return "–"
    kg = f"{value / 1000:,.1f}"
    return kg.replace(",", " ").replace(".", ",").replace(" ", ".") + " kg"


def dong(value: int | None) -> str:
    """370000 -> "370.000 ₫"."""
    if value is None:
        return "–"
    return f"{value:,}".replace(",", ".") + " ₫"


def count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}".replace(",", ".")


env.filters["grams"] = grams
env.filters["dong"] = dong
env.filters["count"] = count


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` with ``context`` plus ``t`` (this request's language), ``lang``,
    ``operator`` (who is signed in, or None), ``path`` and ``here`` (path and query)."""
    lang = lang_of(request)

    def t(key: str, **values: Any) -> str:
        return translate(lang, key, **values)

    body = env.get_template(template).render(
        t=t,
        lang=lang,
        operator=getattr(request.state, "operator", None),
        path=request.url.path,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    )
    return HTMLResponse(body, status_code=status_code)


strings(
    {
        "console": ("Điều hành trung tâm", "Central operations"),
        "nav.fleet": ("Các điểm", "Fleet"),
        "nav.alerts": ("Cảnh báo", "Alerts"),
        "nav.search": ("Tra cứu", "Search"),
        "nav.business": ("Kinh doanh", "Business"),
        "nav.catalogue": ("Danh mục & giá", "Catalogue & prices"),
        "nav.exports": ("Xuất dữ liệu", "Exports"),
        "signin.title": ("Đăng nhập", "Sign in"),
        "signin.username": ("Tên đăng nhập", "Username"),
        "signin.password": ("Mật khẩu", "Password"),
        "signin.button": ("Đăng nhập", "Sign in"),
        "signout": ("Đăng xuất", "Sign out"),
        "error.title": ("Lỗi", "Error"),
        "forbidden": (
            "Vai trò của bạn không được làm việc này.",
            "Your role may not do this.",
        ),
    }
)
