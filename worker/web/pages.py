"""The desk's HTML: the stories, a story's timeline, the feeds, the alerts, and the forms
that change them (each posts, then redirects back with a message). No JavaScript."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from worker.feeds.discover import OpmlError, read_opml
from worker.pipeline import desk as use
from worker.store import alerts as store_alerts
from worker.store import desk, feedback
from worker.web import access
from worker.web.common import (
    TEMPLATES,
    VERDICT_WORDS,
    Desk,
    back,
    id_of,
    read_form,
    refused,
    safe_path,
    signed_form,
)
from worker.web.reads import NoSuchAlert, overview, retry, status


class Pages:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def render(self, request: Request, name: str, **context: Any) -> Response:
        signed_in = self.desk.signed_in(request)
        token = self.desk.token
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "signed_in": signed_in,
                "csrf": access.csrf_value(token) if signed_in and token else "",
                "message": request.query_params.get("message"),
                **context,
            },
        )

    async def index(self, request: Request) -> Response:
        stories, report, mutes = await overview(self.desk)
        return self.render(request, "index.html", stories=stories, status=report, mutes=mutes)

    async def story(self, request: Request) -> Response:
        now = self.desk.clock()
        found = await self.desk.read(desk.timeline, request.path_params["story_id"], now.date())
        if found is None:
            return await self.not_found(request, "such story")
        story_id = found.story.id
        verdicts = await self.desk.read(
            lambda session: feedback.verdicts(session, story_id=story_id)
        )
        mutes = await self.desk.read(feedback.mutes, now)
        return self.render(
            request,
            "story.html",
            t=found,
            verdicts=verdicts,
            is_muted=story_id in mutes,
            muted_until=mutes.get(story_id),
        )

    async def unmatched(self, request: Request) -> Response:
        def run(session: Session) -> tuple[Any, ...]:
            return desk.unmatched(session), desk.story_titles(session)

        reports, stories = await self.desk.read(run)
        return self.render(request, "unmatched.html", reports=reports, stories=stories)

    async def feeds(self, request: Request) -> Response:
        report = await self.desk.read(status, self.desk.clock())
        return self.render(request, "feeds.html", feeds=report.feeds)

    async def alerts(self, request: Request) -> Response:
        alerts = await self.desk.read(lambda session: store_alerts.list_alerts(session, limit=100))
        return self.render(request, "alerts.html", alerts=alerts)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            back = safe_path(request.query_params.get("back"))
            return self.render(request, "login.html", back=back)
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        token = self.desk.token
        back = safe_path(form.get("back"))
        if token is None or not access.same_token(form.get("token"), token):
            return self.render(
                request, "login.html", error="that is not the desk's token", back=back
            )
        separator = "&" if "?" in back else "?"
        response = RedirectResponse(f"{back}{separator}message=signed%20in", 303)
        response.set_cookie(
            access.COOKIE,
            access.session_value(token),
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """Forget this browser's sign-in (a POST, so no link or prefetch signs anyone out)."""
        response = RedirectResponse("/?message=signed%20out", 303)
        response.delete_cookie(access.COOKIE, path="/")
        return response

    async def not_found(self, request: Request, what: str) -> Response:
        return refused(request, f"There is no {what} here.", 404)

    # --- writes ---------------------------------------------------------------------------

    async def feedback(self, request: Request) -> Response:
        form = await signed_form(self.desk, request)
        if isinstance(form, Response):
            return form
        result = await run_in_threadpool(
            lambda: use.give_verdict(
                self.desk.runtime,
                verdict=form.get("verdict", ""),
                alert_id=form.get("alert") or None,
                article_id=id_of(form.get("article")),
                story_id=form.get("story") or None,
            )
        )
        if isinstance(result, use.Refused):
            return back(form, f"not recorded: {result.reason}")
        said = VERDICT_WORDS.get(result.verdict, result.verdict)
        return back(form, f"recorded: {said}" + ("" if result.new else " (already)"))

    async def mute(self, request: Request) -> Response:
        form = await signed_form(self.desk, request)
        if isinstance(form, Response):
            return form
        story_id = form.get("story", "")
        if form.get("action") == "unmute":
            was = await run_in_threadpool(use.unmute, self.desk.sessions, story_id)
            return back(form, f"{story_id} unmuted" if was else f"{story_id} was not muted")
        until = use.parse_until(form.get("until", ""))
        if isinstance(until, str):
            return back(form, until)
        refused = await run_in_threadpool(
            use.set_mute, self.desk.sessions, story_id, until, self.desk.clock()
        )
        if refused is not None:
            return back(form, refused.reason)
        return back(form, f"{story_id} muted" + (f" until {until:%Y-%m-%d}" if until else ""))

    async def add_feed(self, request: Request) -> Response:
        form = await signed_form(self.desk, request)
        if isinstance(form, Response):
            return form
        result = await run_in_threadpool(
            use.add_feed,
            self.desk.sessions,
            self.desk.client,
            form.get("url", ""),
            self.desk.clock(),
        )
        if isinstance(result, use.Refused):
            return back(form, f"not added: {result.reason}")
        found = f" (named by {result.discovered_from})" if result.discovered_from else ""
        return back(form, f"added {result.url}{found}")

    async def remove_feed(self, request: Request) -> Response:
        form = await signed_form(self.desk, request)
        if isinstance(form, Response):
            return form
        feed_id = form.get("feed", "")
        refused = await run_in_threadpool(use.stop_watching, self.desk.sessions, feed_id)
        if refused is not None:
            return back(form, f"not removed: {refused.reason}")
        return back(form, f"stopped watching {feed_id}")

    async def import_opml(self, request: Request) -> Response:
        form = await signed_form(self.desk, request)
        if isinstance(form, Response):
            return form
        try:
            outlines = read_opml((form.get("file") or form.get("opml", "")).encode())
        except OpmlError as exc:
            return back(form, f"not imported: {exc}")
        result = await run_in_threadpool(
            use.import_outlines, self.desk.sessions, outlines, self.desk.clock()
        )
        skipped = "; ".join(f"{url}: {why}" for url, why in result.skipped[:5])
        more = f" (and {len(result.skipped) - 5} more)" if len(result.skipped) > 5 else ""
        return back(
            form,
            f"imported {len(result.added)} feed(s), skipped {len(result.skipped)}"
            + (f": {skipped}{more}" if skipped else ""),
        )

    async def retry(self, request: Request) -> Response:
        form = await signed_form(self.desk, request)
        if isinstance(form, Response):
            return form
        alert = form.get("alert") or None
        try:
            done = await retry(self.desk, alert)
            return back(form, f"{alert}: {done}" if alert else done)
        except NoSuchAlert as exc:
            return back(form, str(exc))
