"""The desk's routes: which handler answers which path, and who may call it.

Reads are open to loopback clients (or everyone, with STORYWATCH_WEB_PUBLIC_READS);
form writes need a signed-in browser and its CSRF field; API writes need the bearer
token (worker.web.access).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from worker.web.api import Api
from worker.web.common import Desk, api_writes, reads
from worker.web.pages import Pages


def create_app(desk: Desk) -> Starlette:
    pages, api = Pages(desk), Api(desk)
    post = ["POST"]
    routes = [
        Route("/", reads(desk, pages.index)),
        Route("/stories/{story_id}", reads(desk, pages.story)),
        Route("/stories/{story_id}/feed.xml", reads(desk, api.story_feed)),
        Route("/feeds", reads(desk, pages.feeds)),
        Route("/unmatched", reads(desk, pages.unmatched)),
        Route("/feeds.opml", reads(desk, api.opml)),
        Route("/alerts", reads(desk, pages.alerts)),
        Route("/alerts/feed.xml", reads(desk, api.alerts_feed)),
        Route("/login", reads(desk, pages.login), methods=["GET", "POST"]),
        Route("/logout", reads(desk, pages.logout), methods=["POST"]),
        Route("/feedback", pages.feedback, methods=post),
        Route("/mute", pages.mute, methods=post),
        Route("/feeds/add", pages.add_feed, methods=post),
        Route("/feeds/import", pages.import_opml, methods=post),
        Route("/feeds/remove", pages.remove_feed, methods=post),
        Route("/alerts/retry", pages.retry, methods=post),
        Route("/api/stories", reads(desk, api.stories)),
        Route("/api/stories/{story_id}", reads(desk, api.story)),
        Route("/api/alerts", reads(desk, api.alerts)),
        Route("/api/unmatched", reads(desk, api.unmatched)),
        Route("/api/alerts/retry", api_writes(desk, api.retry), methods=post),
        Route("/api/feeds", reads(desk, api.feeds), methods=["GET"]),
        Route("/api/feeds", api_writes(desk, api.add_feed), methods=post),
        Route("/api/feeds/opml", api_writes(desk, api.import_opml), methods=post),
        Route("/api/feeds/{feed_id}", api_writes(desk, api.remove_feed), methods=["DELETE"]),
        Route("/api/feedback", api_writes(desk, api.feedback), methods=post),
        Route("/api/mute", api_writes(desk, api.mute), methods=post),
    ]
    return Starlette(routes=routes)
