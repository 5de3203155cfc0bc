"""Rendering pages: the Jinja2 environment, formatting filters, security headers, gzip,
the anti-forgery (CSRF) check, HTML error pages and the sign-in redirect."""

from __future__ import annotations

import functools
import gzip
import hmac
import inspect
import json
import math
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape

from backwatch import __version__
from backwatch.errors import BackwatchError, Forbidden, MalformedInput
from backwatch.timeutil import human_bytes, human_duration, iso, parse_time
from backwatch.web.pages.viewer import Viewer, viewer_for

CSRF_COOKIE = "bw_csrf"
# what a form action did, said once on the page it returns to (issue 19)
FLASH_COOKIE = "bw_flash"
CSRF_FIELD = "csrf"
GZIP_MIN_BYTES = 1400
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Terminal colour and cursor codes (and other control characters) removed."""
    text = _ANSI_RE.sub("", text.replace("\r\n", "\n"))
    # a bare \r is a progress bar redrawing its line: keep the last drawing
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return _CONTROL_RE.sub("", text)


def relative(ts: float | None, now: float) -> str:
    """'just now', '5 min ago', '3 h ago', '2 d ago', 'in 4 h' (coarse, for glances)."""
    if ts is None:
        return "never"
    delta = now - ts
    if not math.isfinite(delta):  # a time stored before times were bounded
        return "unknown"
    ahead = delta < 0
    delta = abs(delta)
    if delta < 45:
        return "just now" if not ahead else "in a moment"
    if delta < 3600:
        text = f"{round(delta / 60)} min"
    elif delta < 86400 * 2:
        text = f"{round(delta / 3600)} h"
    else:
        text = f"{round(delta / 86400)} d"
    return f"in {text}" if ahead else f"{text} ago"


# One format for every absolute time on the pages (docs/dashboard.md): date, 24-hour time
# and the zone. The server writes UTC; app.js rewrites it in the viewer's own zone.
_ISO_IN_TEXT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")


def stamp(value: float | str | None) -> str:
    """'2026-12-07 20:15 UTC' from epoch seconds or an ISO time; '–' when unknown."""
    if isinstance(value, str):
        try:
            value = parse_time(value)
        except ValueError:
            return value
    text = iso(value)
    if text is None:
        return "–"
    return f"{text[:10]} {text[11:16]} UTC"


def timed(text: str | None) -> Markup:
    """``text`` escaped, each ISO time in it (alert and run messages say 'the run of
    2026-12-07T03:00:20Z …') shown in the page's format and the viewer's zone."""
    out, at = [], 0
    text = text or ""
    for m in _ISO_IN_TEXT.finditer(text):
        out.append(escape(text[at : m.start()]))
        value = m.group(0)
        out.append(
            Markup('<time datetime="{0}" data-local title="{0}">{1}</time>').format(
                value, stamp(value)
            )
        )
        at = m.end()
    out.append(escape(text[at:]))
    return Markup("").join(out)


def percent(value: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text} %"


def number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}".replace(",", "\u202f")


def _dash(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    def wrapped(value: Any) -> str:
        return "–" if value is None else fn(value)

    return wrapped


@functools.cache
def environment() -> Any:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        duration=_dash(human_duration),
        size=_dash(human_bytes),
        iso=iso,
        stamp=stamp,
        epoch=lambda v: parse_time(v) if v else None,
        timed=timed,
        percent=percent,
        number=number,
        tojson_compact=lambda v: json.dumps(v, separators=(",", ":")),
    )
    env.globals.update(version=__version__, relative=relative)
    return env


def csrf_token(request: Request) -> str:
    """The anti-forgery token of this browser (double-submit: cookie and form must match)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token):
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def _secure(request: Request) -> bool:
    settings = request.app.state.hub.settings
    base = settings.server.base_url or ""
    return request.url.scheme == "https" or base.startswith("https://")


def _finish(request: Request, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(
            CSRF_COOKIE, new, httponly=True, samesite="strict", secure=_secure(request), path="/"
        )
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    page: str = "",
) -> Response:
    """A full HTML page, gzip-compressed when the browser accepts it."""
    viewer = viewer_for(request)
    hub = request.app.state.hub
    body = (
        environment()
        .get_template(template)
        .render(
            request=request,
            viewer=viewer,
            csrf=csrf_token(request),
            page=page,
            now=hub.now(),
            read_protected=hub.settings.auth.read == "token",
            flash=unquote(request.cookies.get(FLASH_COOKIE, ""))[:300],
            **context,
        )
        .encode("utf-8", "replace")  # a lone surrogate stored before text was cleaned: '?'
    )
    headers = {"Vary": "Accept-Encoding, Cookie"}
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    response = Response(body, status_code=status, media_type="text/html", headers=headers)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return _finish(request, response)


def redirect(request: Request, url: str, said: str = "") -> Response:
    """303 to ``url``; ``said`` (what the action did) is shown once on that page."""
    response = RedirectResponse(url, status_code=303)
    if said:
        response.set_cookie(
            FLASH_COOKIE,
            quote(said),
            max_age=60,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/",
        )
    return _finish(request, response)


def local_path(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this site (no scheme, host or '//'), else ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body → {field: last value}."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise MalformedInput("send the form as application/x-www-form-urlencoded")
    try:
        raw = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("the form is not UTF-8 text") from None
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    source = request.headers.get("origin") or ""
    if not source:
        referer = request.headers.get("referer")
        if not referer:
            return True  # not a browser, or one that sends neither: the token decides
        source = _origin_of(referer)
    source = source.lower()
    if source == "null":
        return False
    host = request.headers.get("host", "").lower()
    allowed = {f"http://{host}", f"https://{host}"}
    base = request.app.state.hub.settings.server.base_url
    if base:
        allowed.add(_origin_of(base))
    return source in allowed


def check_csrf(request: Request, form: dict[str, str]) -> None:
    """Refuse a cross-site or forged form post (403)."""
    if not same_origin(request):
        raise Forbidden("cross-site request refused: post the form from the dashboard itself")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden(
            "the form's anti-forgery token is missing or stale: reload the page and try again"
        )


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(here, safe="/")


def error_page(request: Request, exc: BackwatchError) -> Response:
    return render(
        request,
        "error.html",
        {"status": exc.status, "message": exc.message},
        status=exc.status,
        page="error",
    )


Handler = Callable[..., Awaitable[Response]]


def html_page(fn: Handler) -> Handler:
    """Route decorator: sign-in redirect when reads are protected, HTML error pages."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        viewer: Viewer = viewer_for(request)
        if not viewer.may_read and request.url.path != "/login":
            return redirect(request, login_url(request))
        try:
            return await fn(*args, **kwargs)
        except BackwatchError as exc:
            return error_page(request, exc)

    wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return wrapper
