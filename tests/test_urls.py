"""urls.canonicalize_url: one identity per article, without merging different articles."""

from __future__ import annotations

import pytest

from worker.articles.urls import canonicalize_url, is_tracking_parameter


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        # scheme and host case, default port, fragment
        ("HTTP://News.Example.COM:80/World/Story#comments", "https://news.example.com/World/Story"),
        ("https://news.example.com:443/a", "https://news.example.com/a"),
        ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
        # http and https are one article
        ("http://news.example.com/a", "https://news.example.com/a"),
        # www is kept
        ("https://www.example.com/a", "https://www.example.com/a"),
        # empty path, dot segments, trailing slash kept
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a/b/", "https://example.com/a/b/"),
        ("https://example.com/a/b/..", "https://example.com/a/"),
        ("https://example.com/../../a", "https://example.com/a"),
        ("https://example.com/a/%2e%2e/b", "https://example.com/b"),
        # percent-encoding: unreserved decoded, hex upper-cased, reserved untouched
        ("https://example.com/%7Euser/%41b", "https://example.com/~user/Ab"),
        ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
        ("https://example.com/a+b;v=1", "https://example.com/a+b;v=1"),
        ("https://example.com/é ü", "https://example.com/%C3%A9%20%C3%BC"),
        # IDNA host, trailing dot, credentials dropped
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://example.com./x", "https://example.com/x"),
        ("https://user:secret@example.com/x", "https://example.com/x"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        # whitespace around the URL
        ("  https://example.com/x \n", "https://example.com/x"),
    ],
)
def test_canonical_form(url: str, canonical: str):
    assert canonicalize_url(url) == canonical


@pytest.mark.parametrize(
    "tracked",
    [
        "https://example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x",
        "https://example.com/a?fbclid=IwAR0&gclid=abc&dclid=1&msclkid=2",
        "https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&yclid=4&_ga=5",
        "https://example.com/a?ref=twitter&ref_src=twsrc&cmpid=x&ocid=y&smid=z",
        "https://example.com/a?ns_mchannel=rss&ns_source=x&at_medium=y&at_campaign=z",
        "https://example.com/a?sr_share=twitter&CMP=share_btn_tw&UTM_Source=X",
    ],
)
def test_tracking_parameters_are_dropped(tracked: str):
    assert canonicalize_url(tracked) == "https://example.com/a"


def test_remaining_parameters_are_sorted_and_repeated_ones_keep_their_order():
    assert canonicalize_url("https://example.com/s?b=2&a=1&utm_source=x&a=0") == (
        "https://example.com/s?a=1&a=0&b=2"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/story?id=42",
        "https://example.com/live?game=5",  # courlan would drop "game" (matches "ga")
        "https://example.com/search?source=reuters",  # and "source"
        "https://example.com/page?reference=7",  # and "reference" (matches "ref")
        "https://example.com/a?flag",  # blank value kept
        "https://example.com/q?x=a+b",  # "+" untouched
    ],
)
def test_content_parameters_are_kept(url: str):
    assert canonicalize_url(url) == url


def test_different_articles_stay_different():
    assert canonicalize_url("https://example.com/story?id=1") != canonicalize_url(
        "https://example.com/story?id=2"
    )
    assert canonicalize_url("https://example.com/a") != canonicalize_url("https://example.com/a/")


def test_canonicalization_is_idempotent():
    once = canonicalize_url("HTTP://Bücher.Example:80/a/../b/%7e?utm_source=x&z=1&a=%c3%a9#f")
    assert canonicalize_url(once) == once


@pytest.mark.parametrize(
    "url", ["mailto:desk@example.com", "ftp://example.com/x", "/relative/path", ""]
)
def test_non_http_urls_are_returned_as_given(url: str):
    assert canonicalize_url(url) == url


def test_tracking_parameter_names_are_case_insensitive_exact_or_prefixed():
    assert is_tracking_parameter("UTM_SOURCE")
    assert is_tracking_parameter("fbclid")
    assert not is_tracking_parameter("id")
    assert not is_tracking_parameter("reference")
