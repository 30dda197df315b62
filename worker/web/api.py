"""The desk's JSON API (`/api/`) and its Atom feeds and OPML export: the same things as
the pages, for tools and feed readers."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from worker.feeds.discover import OpmlError, Outline, read_opml, write_opml
from worker.pipeline import desk as use
from worker.store import alerts as store_alerts
from worker.store import desk, feedback
from worker.web.common import MAX_BODY_BYTES, Desk, as_json, json_body, limit_of, unstorable
from worker.web.reads import NoSuchAlert, overview, retry, status
from worker.web.syndication import Entry, atom


class Api:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def stories(self, _request: Request) -> Response:
        stories, _, mutes = await overview(self.desk)
        return JSONResponse([{**as_json(s), "muted": s.id in mutes} for s in stories])

    async def story(self, request: Request) -> Response:
        found = await self.desk.read(
            desk.timeline, request.path_params["story_id"], self.desk.clock().date()
        )
        if found is None:
            return JSONResponse({"error": "no such story"}, 404)
        story = found.story
        verdicts = await self.desk.read(
            lambda session: feedback.verdicts(session, story_id=story.id)
        )
        return JSONResponse(
            {
                **as_json(found.overview),
                "key_terms": list(story.key_terms),
                "keywords": list(story.keywords),
                "documents": list(story.documents),
                "developments": as_json(found.developments),
                "reports": as_json(found.reports),
                "feedback": as_json(verdicts),
            }
        )

    async def unmatched(self, request: Request) -> Response:
        limit = limit_of(request.query_params.get("limit"), 100)
        found = await self.desk.read(lambda session: desk.unmatched(session, limit=limit))
        return JSONResponse(as_json(found))

    async def alerts(self, request: Request) -> Response:
        limit = limit_of(request.query_params.get("limit"), 100)
        found = await self.desk.read(lambda session: store_alerts.list_alerts(session, limit=limit))
        return JSONResponse(as_json(found))

    async def feeds(self, _request: Request) -> Response:
        report = await self.desk.read(status, self.desk.clock())
        return JSONResponse(as_json(report.feeds))

    async def feedback(self, request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        alert, article, story, note = (body.get(k) for k in ("alert", "article", "story", "note"))
        result = await run_in_threadpool(
            lambda: use.give_verdict(
                self.desk.runtime,
                verdict=str(body.get("verdict", "")),
                alert_id=str(alert) if alert is not None else None,
                article_id=article
                if isinstance(article, int) and not isinstance(article, bool) and article > 0
                else None,
                story_id=str(story) if story is not None else None,
                note=str(note) if note is not None else None,
            )
        )
        if isinstance(result, use.Refused):
            return JSONResponse({"error": result.reason}, 400)
        return JSONResponse(as_json(result), 201 if result.new else 200)

    async def add_feed(self, request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        result = await run_in_threadpool(
            use.add_feed,
            self.desk.sessions,
            self.desk.client,
            str(body.get("url", "")),
            self.desk.clock(),
        )
        if isinstance(result, use.Refused):
            return JSONResponse({"error": result.reason}, 400)
        return JSONResponse(as_json(result), 201)

    async def remove_feed(self, request: Request) -> Response:
        feed_id = request.path_params["feed_id"]
        if unstorable(feed_id):
            return JSONResponse({"error": "there is no such feed"}, 404)
        refused = await run_in_threadpool(use.stop_watching, self.desk.sessions, feed_id)
        if refused is None:
            return JSONResponse({"id": feed_id, "enabled": False})
        return JSONResponse({"error": refused.reason}, 404 if refused.missing else 409)

    async def import_opml(self, request: Request) -> Response:
        document = await request.body()
        if len(document) > MAX_BODY_BYTES:
            return JSONResponse({"error": "the OPML document is too large"}, 413)
        try:
            outlines = read_opml(document)
        except OpmlError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        result = await run_in_threadpool(
            use.import_outlines, self.desk.sessions, outlines, self.desk.clock()
        )
        return JSONResponse(
            {
                "added": as_json(result.added),
                "skipped": [{"url": url, "why": why} for url, why in result.skipped],
            }
        )

    async def mute(self, request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        story_id = str(body.get("story", ""))
        if body.get("off"):
            was = await run_in_threadpool(use.unmute, self.desk.sessions, story_id)
            return JSONResponse({"story": story_id, "muted": False, "was_muted": was})
        raw_until = body.get("until")
        if raw_until is not None and not isinstance(raw_until, str):
            return JSONResponse({"error": "until is a date string (YYYY-MM-DD or ISO 8601)"}, 400)
        until = use.parse_until(raw_until or "")
        if isinstance(until, str):
            return JSONResponse({"error": until}, 400)
        refused = await run_in_threadpool(
            use.set_mute, self.desk.sessions, story_id, until, self.desk.clock()
        )
        if refused is not None:
            return JSONResponse({"error": refused.reason}, 400)
        return JSONResponse(
            {"story": story_id, "muted": True, "until": until.isoformat() if until else None}
        )

    async def retry(self, request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        alert = body.get("alert")
        try:
            return JSONResponse({"result": await retry(self.desk, str(alert) if alert else None)})
        except NoSuchAlert as exc:
            return JSONResponse({"error": str(exc)}, 404)

    # --- for feed readers -----------------------------------------------------------------

    async def story_feed(self, request: Request) -> Response:
        now = self.desk.clock()
        found = await self.desk.read(desk.timeline, request.path_params["story_id"], now.date())
        if found is None:
            return PlainTextResponse("no such story", 404)
        base = str(request.base_url).rstrip("/")
        body = atom(
            feed_id=f"urn:storywatch:story:{found.story.id}",
            title=f"storywatch: {found.story.title}",
            self_url=str(request.url),
            alternate=f"{base}/stories/{quote(found.story.id)}",
            entries=[_entry(d) for d in found.developments if not d.wrong_story],
            updated=now,
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    async def alerts_feed(self, request: Request) -> Response:
        # The stories' titles only: the whole overview (counts, feed health) was most of
        # this feed's time on PostgreSQL.
        def run(session: Session) -> tuple[dict[str, str], tuple[desk.DevelopmentView, ...]]:
            return dict(desk.story_titles(session)), desk.latest_developments(session, 100)

        titles, latest = await self.desk.read(run)
        base = str(request.base_url).rstrip("/")
        body = atom(
            feed_id="urn:storywatch:alerts",
            title="storywatch: every development",
            self_url=str(request.url),
            alternate=f"{base}/alerts",
            entries=[_entry(d, titles.get(d.story_id)) for d in latest if not d.wrong_story],
            updated=self.desk.clock(),
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    async def opml(self, _request: Request) -> Response:
        report = await self.desk.read(status, self.desk.clock())
        outlines = [Outline(f.url, f.title) for f in report.feeds if f.enabled]
        return Response(
            write_opml(outlines),
            media_type="text/x-opml; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="storywatch-feeds.opml"'},
        )


def _entry(development: desk.DevelopmentView, story_title: str | None = None) -> Entry:
    facts = development.new_facts
    title = development.title or (facts[0] if facts else "development")
    return Entry(
        id=f"urn:storywatch:development:{development.id}",
        title=f"{story_title}: {title}" if story_title else title,
        link=development.url,
        updated=development.detected_at,
        summary=" ".join(facts) or title,
        source=development.source,
    )
