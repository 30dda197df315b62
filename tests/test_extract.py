"""extract.extract_page on fixture pages: main text without furniture or comments, metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.articles.extract import decode_html, extract_page, parse_page_date
from worker.errors import ExtractionError
from worker.models import Page

PAGES = Path(__file__).parent / "fixtures" / "pages"
ARTICLE_URL = (
    "https://www.worldnewsdaily.example/world/europe/ukraine-drone-depot-oryol-2025-06-14/"
    "?utm_source=rss"
)


def load(name: str) -> bytes:
    return (PAGES / name).read_bytes()


@pytest.fixture(scope="module")
def article_page() -> Page:
    return extract_page(load("article.html"), url=ARTICLE_URL)


def test_main_text_is_the_article_body(article_page: Page):
    assert article_page.text.startswith("Ukraine says it struck drone depot")
    assert "Shahed drones in Russia’s Oryol region" in article_page.text
    assert "downed 15 out of 16 drones" in article_page.text  # last paragraph kept


def test_reader_comments_and_site_furniture_are_left_out(article_page: Page):
    assert "COMMENTMARKER" not in article_page.text  # include_comments=False
    for furniture in ("Click to Gallery", "Read More", "Copyright 2025", "Business"):
        assert furniture not in article_page.text


def test_metadata_title_site_name_and_precise_utc_time(article_page: Page):
    assert article_page.title == "Ukraine says it struck drone depot in Russia's Oryol region"
    assert article_page.source == "World News Daily"
    # article:published_time 13:05+03:00, not just the day htmldate would give
    assert article_page.published == datetime(2025, 6, 14, 10, 5, tzinfo=UTC)


def test_relative_canonical_link_is_resolved_and_preferred_over_og_url(article_page: Page):
    assert article_page.canonical_url == (
        "https://www.worldnewsdaily.example/world/europe/ukraine-drone-depot-oryol-2025-06-14/"
    )


def test_string_and_bytes_input_give_the_same_page(article_page: Page):
    from_text = extract_page(load("article.html").decode("utf-8"), url=ARTICLE_URL)
    assert from_text == article_page


def test_meta_http_equiv_charset_decodes_windows_1252_page():
    page = extract_page(load("windows1252.html"), url="https://cafe.example.fr/decision")
    assert page.title == "Décision à Bakou"
    assert page.source == "Le Café du Monde"
    assert "Les négociateurs réunis à Bakou" in page.text
    assert "d’au moins 300 milliards" in page.text  # cp1252 0x92, not a C1 control
    assert page.canonical_url is None
    assert page.published is None


def test_http_charset_header_wins_over_meta():
    body = '<html><head><meta charset="utf-8"></head><body>é</body></html>'.encode("cp1252")
    assert "é" in decode_html(body, "text/html; charset=windows-1252")
    assert "é" not in decode_html(body)  # meta says utf-8: the byte is invalid there


def test_undeclared_non_utf8_bytes_are_detected_not_dropped():
    """No charset anywhere and invalid UTF-8: charset detection, not lossy UTF-8."""
    sentence = "Путин признал, что ракеты сбили самолёт. "
    text = "<html><body><p>" + sentence * 10 + "</p></body></html>"
    decoded = decode_html(text.encode("cp1251"))
    assert "Путин признал, что ракеты сбили самолёт." in decoded
    assert "\ufffd" not in decoded


def test_index_page_without_main_text_raises_extraction_error():
    with pytest.raises(ExtractionError, match="no main text found"):
        extract_page(load("index_page.html"), url="https://news.example/world")


@pytest.mark.parametrize("html", ["", "   ", b"\x00\x00", "not html at all"])
def test_empty_or_non_html_input_raises_extraction_error(html: str | bytes):
    with pytest.raises(ExtractionError):
        extract_page(html, url="https://news.example/x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-14", datetime(2025, 6, 14, tzinfo=UTC)),
        ("2025-06-14T13:05:00+0300", datetime(2025, 6, 14, 10, 5, tzinfo=UTC)),
        ("2025-06-14T13:05:00", datetime(2025, 6, 14, 13, 5, tzinfo=UTC)),
        ("June 14", None),
        ("0001-01-01T00:00:00+0500", None),  # before year 1 in UTC: not a date, no crash
        (None, None),
    ],
)
def test_parse_page_date_gives_aware_utc(value: str | None, expected: datetime | None):
    assert parse_page_date(value) == expected


@pytest.mark.parametrize("stated", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_a_page_time_outside_the_calendar_is_ignored(stated: str):
    html = load("article.html").replace(
        b"<head>", f'<head><meta property="article:published_time" content="{stated}">'.encode(), 1
    )
    page = extract_page(html, url=ARTICLE_URL)
    # Skipped for the page's next stated time, instead of failing the whole page.
    assert page.published == datetime(2025, 6, 14, 10, 5, tzinfo=UTC)
