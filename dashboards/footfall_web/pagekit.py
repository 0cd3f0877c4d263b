"""What every HTML page shares: the templates, the mount prefix, the visitor's language
(and the cookie that keeps it), the optional theme, and the redirect to the login page.
So that the board, the agency and report pages and the public display speak alike."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from . import i18n
from .state import LANG_COOKIE

HERE = Path(__file__).parent
THEMES = ("dark", "light")
"""`?theme=` values; without one, pages follow the screen's prefers-color-scheme."""


def base(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def page_lang(request: Request) -> i18n.Lang:
    return i18n.choose(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def switcher(lang: i18n.Lang) -> dict[str, object]:
    """What the language switcher of the board, agency, report and login pages shows: the
    language chosen, the switcher's label in it, and every language by its own name."""
    return {
        "lang": lang,
        "language": i18n.TEXTS[lang]["language"],
        "languages": i18n.LANGUAGE_NAMES,
    }


def page_theme(request: Request) -> str | None:
    """`?theme=dark|light` (any case) over the screen's own setting; anything else
    is passed over (a kiosk page never fails on it)."""
    theme = (request.query_params.get("theme") or "").strip().lower()
    return theme if theme in THEMES else None


def remember_lang(request: Request, response: Response) -> None:
    """A language picked with `?lang=` (any case) is kept in the switcher's cookie."""
    picked = i18n.parse_lang(request.query_params.get("lang"))
    if picked is not None:
        response.set_cookie(LANG_COOKIE, picked, max_age=365 * 86400, samesite="lax", httponly=True)
    response.headers["Vary"] = "Accept-Language, Cookie"


def safe_next(target: str) -> str:
    """Only local paths after login (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request, target: str) -> RedirectResponse:
    """To the login page, which comes back to `target` (a path below the mount)."""
    return RedirectResponse(f"{base(request)}/login?next={quote(target)}", 303)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["page_theme"] = page_theme
