"""Canonical URLs: one spelling per story, for deduplication. Contains no business logic."""

from __future__ import annotations

import functools
import re
from html import unescape
from urllib.parse import urljoin, urlsplit, urlunsplit

WEB_SCHEMES = ("http", "https")

# Query parameters that identify a campaign or a click, never a page.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "igshid", "li_fat_id", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "_ga", "_gl", "ck_subscriber_id",
        "wt_mc", "wt.mc_id", "cmpid", "ncid", "sr_share", "s_cid", "at_medium", "at_campaign",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")

_UNSAFE = re.compile(r"[\s\[\]<>\"{}|\\^`]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _quote_unsafe(text: str) -> str:
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def _hidden_scheme(url: str) -> str | None:
    """The scheme a browser would find once HTML entities are decoded and blanks dropped:
    `&#106;avascript:` and `java\tscript:` are javascript: links, not relative paths."""
    match = _SCHEME.match(_INVISIBLE.sub("", unescape(url)))
    return match.group(1).lower() if match else None


def web_url(url: str | None, base: str | None = None) -> str | None:
    """`url` made absolute against `base`, if it is http(s); None for anything else.

    Blank (empty or whitespace-only) is None, not `base`: it names no link."""
    url = (url or "").strip()
    if not url:
        return None
    if _hidden_scheme(url) not in (None, *WEB_SCHEMES):
        return None
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        return None
    return url


def strip_tracking(url: str) -> str:
    """The URL without tracking parameters, otherwise as written (no added slashes).

    Characters that cannot stand in a URL (spaces, brackets, quotes) are percent-encoded,
    so the URL can end a `- (TITLE, DATE)[URL]` reference line unambiguously.
    """
    parts = urlsplit(url.strip())
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not is_tracking_param(pair.split("=", 1)[0])
    )
    netloc = parts.netloc
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            _quote_unsafe(parts.path),
            _quote_unsafe(query),
            _quote_unsafe(parts.fragment),
        )
    )


def canonical(url: str) -> str:
    """The dedup key of a URL, never shown to users: tracking parameters, fragment and an
    empty `?` removed, scheme and host lowercased, default port dropped, an empty http(s)
    path given as `/` (RFC 3986 6.2.3: `https://host` is `https://host/`). Path and remaining
    query are kept as written, percent-encoding case included.

    User info is dropped: it names no resource (RFC 9110 4.2.4 deprecates it in http(s)), so
    `https://evil@www.theregister.com/x` is the Register's `/x`. The host is what follows the
    `@`: `https://www.theregister.com@evil.example/` stays on evil.example.

    `http` and `https` stay distinct: they are different origins that may serve different
    things (RFC 9110 4.2.2), and merging them would mean guessing which one was cited.
    """
    parts = urlsplit(strip_tracking(url))
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    path = parts.path
    if not path and host and parts.scheme in WEB_SCHEMES:
        path = "/"
    return urlunsplit((parts.scheme, host, path, parts.query, ""))


@functools.lru_cache(maxsize=8192)
def host_of(url: str | None) -> str | None:
    """The host without a leading `www.`, for matching a story to the feed that published it."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower()
    return host[4:] if host.startswith("www.") else host
