"""Canonical article URLs: one string per article, whatever tracking or spelling a link uses.

The canonical form is an *identity* (item keys, "have we seen this article?"), not a URL
to fetch: fetch the URL the feed or page gave. Rules, in order:

1. scheme: http and https are the same article, so both become `https` (sites move to
   https during a feed's life; keeping the scheme would re-key every item then);
2. host: lower-cased, IDNA (punycode) ASCII form, trailing dot dropped; credentials
   dropped; `www.` KEPT: it is a different host by spec, and sites that serve both
   redirect one to the other, so fetched URLs already agree;
3. port: the default port (80 or 443) dropped;
4. path: dot segments removed (RFC 3986 §5.2.4); percent-encoding normalized (hex
   upper-cased, unreserved characters decoded, other characters encoded, RFC 3986
   §6.2.2); empty path -> "/"; a trailing slash is kept, since "/a" and "/a/" may differ;
5. query: tracking parameters (TRACKING_PARAMETERS, TRACKING_PREFIXES) dropped, blank
   values kept, remaining parameters sorted by name (stable, so repeated names keep their
   order);
6. fragment: dropped (never sent to the server).

Why not courlan (installed with trafilatura)? `courlan.normalize_url` matches trackers
with an unanchored regex that also drops real parameters ("game", "global", "source",
"reference"...), percent-encodes reserved characters such as "+" and ";" (which changes
meaning, RFC 3986 §6.2.2.2), decodes punycode to Unicode and drops blank parameters.
For an identity key, merging two different articles is worse than missing a copy, so we
use an explicit list. Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

import idna

# Exact parameter names (compared lower-cased) that only track the reader or campaign.
TRACKING_PARAMETERS = frozenset(
    {
        # ad and social click ids
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "igsh", "srsltid",
        # analytics and mailing
        "_ga", "_gl", "_hsenc", "_hsmi", "_openstat", "mc_cid", "mc_eid", "mkt_tok",
        "guccounter", "guce_referrer", "guce_referrer_sig",
        # news-site share and campaign tags
        "ref", "ref_src", "ref_url", "cmpid", "cmp", "intcmp", "icid", "ncid", "ocid",
        "smid", "smtyp", "sr_share", "xtor", "spm", "share", "s_cid", "s_kwcid",
        "__twitter_impression",
    }
)  # fmt: skip

# Parameter name prefixes (lower-cased): utm_source, ns_campaign, at_medium, fb_ref ...
TRACKING_PREFIXES = ("utm_", "ns_", "at_", "fb_", "pk_", "mtm_", "hsa_", "oly_", "vero_", "itm_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
# Characters left as they are when re-encoding: reserved (RFC 3986 §2.2) and "%".
_PATH_SAFE = "/:@!$&'()*+,;=%"
_QUERY_SAFE = "/:@!$'()*+,;=%?"


def is_tracking_parameter(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def canonicalize_url(url: str) -> str:
    """The canonical identity of an http(s) URL (see the module docstring for the rules).

    Anything that is not an absolute http(s) URL is returned stripped but otherwise as is.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return text
    host = _canonical_host(parts.hostname)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return urlunsplit(
        SplitResult("https", host, _canonical_path(parts.path), _canonical_query(parts.query), "")
    )


def _canonical_host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")  # urlsplit already lower-cases and strips [ ]
    if ":" in host:  # IPv6 literal
        return f"[{host}]"
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:  # IDNA 2003 is laxer (e.g. underscores, emoji domains that exist in the wild)
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            return quote(host, safe=".-")


def _normalize_escapes(part: str, safe: str) -> str:
    """Upper-case escapes, decode escaped unreserved characters, encode everything unsafe."""

    def fix(match: re.Match[str]) -> str:
        char = unquote(match.group())
        return char if len(char) == 1 and char in _UNRESERVED else match.group().upper()

    return quote(_PCT.sub(fix, part), safe=safe)


def _canonical_path(path: str) -> str:
    """Escapes normalized first (so "%2E%2E" counts as ".."), then RFC 3986 §5.2.4."""
    path = _normalize_escapes(path, _PATH_SAFE)
    segments = path.split("/")
    output: list[str] = []
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")  # "/a/b/.." is the directory "/a/", trailing slash included
    return "/" + "/".join(output)


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        normalized = _normalize_escapes(pair, _QUERY_SAFE)
        name = normalized.split("=", 1)[0]
        if is_tracking_parameter(unquote(name.replace("+", " "))):
            continue
        pairs.append((name, normalized))
    pairs.sort(key=lambda item: item[0])
    return "&".join(pair for _name, pair in pairs)
