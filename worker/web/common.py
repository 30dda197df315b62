"""What every desk handler shares: the configuration, the read guard, the write guards,
the database on the thread pool, and request bodies read within bounds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from worker.fetch.net import GuardedClient
from worker.pipeline.runtime import Runtime
from worker.store.engine import DbSessions
from worker.web import access

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# How the desk names each verdict (its buttons, its confirmations, its timelines).
VERDICT_WORDS = {
    "not-new": "not new",
    "wrong-story": "wrong story",
    "development": "this was a development",
}
TEMPLATES.env.globals["verdict_words"] = VERDICT_WORDS
MAX_BODY_BYTES = 5_000_000  # an OPML file of thousands of feeds fits

Handler = Callable[[Request], Awaitable[Response]]
Enqueue = Callable[[tuple[str, ...]], str | None]  # alert ids -> the broker's error or None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Desk:
    """What the desk needs: the database, the token, and how to fetch and enqueue."""

    runtime: Runtime  # writes, the stories' routing and the clock
    readers: DbSessions  # reads: read-only snapshots that take no write lock
    token: str | None
    public_reads: bool
    client: GuardedClient
    enqueue: Enqueue | None = None  # sends deliveries after a retry; None: the sweep will

    @property
    def sessions(self) -> DbSessions:
        return self.runtime.sessions

    def clock(self) -> datetime:
        return self.runtime.clock()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` in one read-only snapshot, on the thread pool. Not the
        runtime's sessions: on SQLite each of their transactions takes the write lock
        (BEGIN IMMEDIATE), and a page would wait for, and hold up, the worker's items."""

        def run() -> T:
            with self.readers() as session, session.begin():
                return fn(session, *args)

        return await run_in_threadpool(run)

    def signed_in(self, request: Request) -> bool:
        return self.token is not None and access.same_token(
            request.cookies.get(access.COOKIE), access.session_value(self.token)
        )


def reads(desk: Desk, handler: Handler) -> Handler:
    """Loopback clients only, unless reads are public."""

    async def guarded(request: Request) -> Response:
        client = request.client.host if request.client else None
        if not desk.public_reads and not access.is_loopback(client):
            return PlainTextResponse(
                "the desk answers this machine only (STORYWATCH_WEB_PUBLIC_READS)", 403
            )
        if unstorable([request.scope["path"], *request.query_params.values()]) is not None:
            # "/stories/a%00b": no story is named so, and PostgreSQL refuses to look.
            return PlainTextResponse("not found", 404)
        return await handler(request)

    return guarded


def api_writes(desk: Desk, handler: Handler) -> Handler:
    """The bearer token, else 401 (none given) or 403 (another, or writes are off)."""

    async def guarded(request: Request) -> Response:
        if desk.token is None:
            return JSONResponse({"error": "writes are off: STORYWATCH_WEB_TOKEN is not set"}, 403)
        given = access.bearer(request.headers.get("authorization"))
        if given is None:
            return JSONResponse(
                {"error": "Authorization: Bearer <STORYWATCH_WEB_TOKEN> required"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not access.same_token(given, desk.token):
            return JSONResponse({"error": "wrong token"}, 403)
        return await handler(request)

    return guarded


async def signed_form(desk: Desk, request: Request) -> dict[str, str] | Response:
    """The posted form of a signed-in browser with its CSRF field, or the refusal (a page
    that says why and links on, since a person sees it)."""
    if desk.token is None:
        return refused(request, "Writes are off: STORYWATCH_WEB_TOKEN is not set.", 403)
    if not desk.signed_in(request):
        return refused(request, "Sign in first: this needs the desk's token.", 403, login=True)
    form = await read_form(request)
    if isinstance(form, Response):
        return form
    if not access.same_token(form.get("csrf"), access.csrf_value(desk.token)):
        # Signed in, but the form is not one of this desk's pages of this token (an old
        # page kept open across a token change, or another site's form).
        return refused(
            request, "That form is out of date: reload the page and try again.", 403, login=True
        )
    return form


def refused(request: Request, message: str, status: int, *, login: bool = False) -> Response:
    """A refusal a person reads: the reason, and the way back (to sign in, or home)."""
    return TEMPLATES.TemplateResponse(
        request,
        "refused.html",
        {"message": None, "reason": message, "login": login, "back": same_site_path(request)},
        status_code=status,
    )


def same_site_path(request: Request) -> str:
    """The page the request came from, when it is this desk's, else "/"."""
    referer = request.headers.get("referer") or ""
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return "/"
    return safe_path(parts.path + (f"?{parts.query}" if parts.query else "")) if referer else "/"


def safe_path(target: str | None) -> str:
    """`target` when it is a path on this site, else "/" (never an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def read_form(request: Request) -> dict[str, str] | Response:
    """A posted form (urlencoded, or multipart with one file), bounded, the first value
    of each name; a file's content is read as UTF-8 text."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        return PlainTextResponse("the form is too large", 413)
    try:
        form = await request.form(max_files=1, max_fields=50, max_part_size=MAX_BODY_BYTES)
    except (AssertionError, ValueError) as exc:  # Starlette's and python-multipart's refusals
        return PlainTextResponse(f"unreadable form: {exc}", 400)
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if name in fields:
            continue
        if isinstance(value, UploadFile):
            data = await value.read(MAX_BODY_BYTES + 1)
            if len(data) > MAX_BODY_BYTES:
                return PlainTextResponse("the file is too large", 413)
            fields[name] = data.decode("utf-8", errors="replace")
        else:
            fields[name] = value
    problem = unstorable(list(fields.values()))
    if problem is not None:
        return PlainTextResponse(f"unreadable form: {problem}", 400)
    return fields


async def json_body(request: Request) -> dict[str, Any] | Response:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"error": "the body is too large"}, 413)
    try:
        value = json.loads(body or b"{}")
    except RecursionError:  # "[[[[...": the parser's stack, not the body's size
        return JSONResponse({"error": "not JSON the desk reads: nested too deep"}, 400)
    except ValueError as exc:
        return JSONResponse({"error": f"not JSON: {exc}"}, 400)
    if not isinstance(value, dict):
        return JSONResponse({"error": "expected a JSON object"}, 400)
    problem = unstorable(value)
    if problem is not None:
        return JSONResponse({"error": problem}, 400)
    return value


MAX_ID = 2**63 - 1  # the largest id either database stores


def unstorable(value: Any) -> str | None:
    """Why a value from a request cannot reach the database, or None. JSON can spell a
    NUL (PostgreSQL text refuses it), a lone surrogate (no encoding takes it) and an
    integer past any column's range; each would otherwise fail deep in a handler as a
    500 instead of the caller's 400."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "a string holds a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string holds a lone surrogate (not Unicode text)"
        elif isinstance(item, bool | float) or item is None:
            continue
        elif isinstance(item, int):
            if not -MAX_ID <= item <= MAX_ID:
                return f"the number {item} is out of range"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def back(form: dict[str, str], message: str) -> Response:
    """303 to the page the form came from (a path on this site only), with a message."""
    target = safe_path(form.get("back"))
    separator = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{separator}message={quote(message)}", 303)


def as_json(value: Any) -> Any:
    """Dataclasses, tuples and datetimes as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def id_of(raw: str | None) -> int | None:
    """A positive id from a form field, or None ("²" is a digit to `str.isdigit`, not
    to `int`)."""
    if raw is None or not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if 0 < number <= MAX_ID else None


def limit_of(raw: str | None, default: int) -> int:
    try:
        return max(1, min(int(raw), 1000)) if raw else default
    except ValueError:
        return default
