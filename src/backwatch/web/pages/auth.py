"""Signing in to the dashboard with a token, and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import BackwatchError
from backwatch.web.pages.render import (
    _secure,
    check_csrf,
    error_page,
    local_path,
    read_form,
    redirect,
    render,
)
from backwatch.web.pages.viewer import SESSION_COOKIE, token_scope, viewer_for

router = APIRouter(include_in_schema=False)
SESSION_DAYS = 30


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return render(
        request,
        "login.html",
        {"next": local_path(next), "problem": None, "token_file": _token_file(request)},
        page="login",
    )


@router.post("/login")
async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
        check_csrf(request, form)
    except BackwatchError as exc:
        return error_page(request, exc)
    target = local_path(form.get("next"))
    token = form.get("token", "").strip()
    found = token_scope(request, token) if token else None
    if found is None:
        problem = "Enter a token." if not token else "That token is not valid (unknown or revoked)."
        return render(
            request,
            "login.html",
            {"next": target, "problem": problem, "token_file": _token_file(request)},
            status=401,
            page="login",
        )
    response = redirect(request, target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        check_csrf(request, await read_form(request))
    except BackwatchError as exc:
        return error_page(request, exc)
    response = redirect(request, "/" if not viewer_for(request).read_protected else "/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _token_file(request: Request) -> str:
    return str(request.app.state.hub.settings.token_file.resolve())
