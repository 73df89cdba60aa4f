"""URL spelling: `canonical()` is the dedup key, `strip_tracking()` what users see, `web_url()`
the gate every link from a feed passes through."""

from __future__ import annotations

import pytest

from aggregator.urls import canonical, host_of, is_tracking_param, strip_tracking, web_url

# (input, canonical, strip_tracking)
CASES = [
    # An empty http(s) path is "/" in the key only; what users see gets no added slash.
    ("https://www.ricord.ai", "https://www.ricord.ai/", "https://www.ricord.ai"),
    ("https://www.ricord.ai/", "https://www.ricord.ai/", "https://www.ricord.ai/"),
    ("https://WWW.ricord.ai:443", "https://www.ricord.ai/", "https://WWW.ricord.ai:443"),
    ("HTTPS://WWW.Ricord.AI:443/", "https://www.ricord.ai/", "https://WWW.Ricord.AI:443/"),
    ("https://example.com?a=1", "https://example.com/?a=1", "https://example.com?a=1"),
    ("https://example.com#top", "https://example.com/", "https://example.com#top"),
    ("https://example.com:/", "https://example.com/", "https://example.com:/"),
    # Default ports go; others stay, including the other scheme's default.
    ("http://example.com:80/a", "http://example.com/a", "http://example.com:80/a"),
    ("https://example.com:8443", "https://example.com:8443/", "https://example.com:8443"),
    ("http://example.com:443/", "http://example.com:443/", "http://example.com:443/"),
    ("https://example.com:80/", "https://example.com:80/", "https://example.com:80/"),
    # http and https are different origins: never merged.
    ("http://example.com", "http://example.com/", "http://example.com"),
    ("http://example.com/a", "http://example.com/a", "http://example.com/a"),
    # IPv6 hosts: lowercased, brackets kept, default port dropped.
    ("https://[2001:DB8::1]", "https://[2001:db8::1]/", "https://[2001:DB8::1]"),
    ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x", "https://[2001:DB8::1]:443/x"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x", "http://[::1]:8080/x"),
    # User info is dropped from the key (kept as written for display); the host is after the @.
    ("https://user:pw@example.com/", "https://example.com/", "https://user:pw@example.com/"),
    (
        "https://evil@www.theregister.com/2026/04/20/story/",
        "https://www.theregister.com/2026/04/20/story/",
        "https://evil@www.theregister.com/2026/04/20/story/",
    ),
    (
        "https://evil@WWW.TheRegister.com",
        "https://www.theregister.com/",
        "https://evil@WWW.TheRegister.com",
    ),
    (
        "https://www.theregister.com@evil.example/x",
        "https://evil.example/x",
        "https://www.theregister.com@evil.example/x",
    ),
    # Path as written: case, percent-encoding case, dot segments, trailing slashes.
    (
        "https://example.com/A%2fb%2F/C",
        "https://example.com/A%2fb%2F/C",
        "https://example.com/A%2fb%2F/C",
    ),
    (
        "https://example.com/a/./b/../c",
        "https://example.com/a/./b/../c",
        "https://example.com/a/./b/../c",
    ),
    ("https://example.com/a/", "https://example.com/a/", "https://example.com/a/"),
    ("https://example.com/a", "https://example.com/a", "https://example.com/a"),
    # An empty query or an empty `?` is dropped, empty pairs too.
    ("https://example.com/?", "https://example.com/", "https://example.com/"),
    ("https://example.com?", "https://example.com/", "https://example.com"),
    ("https://example.com/p?#f", "https://example.com/p", "https://example.com/p#f"),
    (
        "https://example.com/p?a=1&&b=2&",
        "https://example.com/p?a=1&b=2",
        "https://example.com/p?a=1&b=2",
    ),
    # Tracking parameters go; the others keep their order, case and encoding.
    (
        "https://example.com/p?utm_source=rss&utm_medium=feed",
        "https://example.com/p",
        "https://example.com/p",
    ),
    ("https://example.com?utm_source=rss", "https://example.com/", "https://example.com"),
    (
        "https://example.com/p?z=1&utm_campaign=x&b=%2Fq%2f&A=a+b&fbclid=IwAR0&a=%20",
        "https://example.com/p?z=1&b=%2Fq%2f&A=a+b&a=%20",
        "https://example.com/p?z=1&b=%2Fq%2f&A=a+b&a=%20",
    ),
    (
        "https://example.com/p?gclid=abc&id=7&mc_cid=1a2b&mc_eid=3c4d&page=2",
        "https://example.com/p?id=7&page=2",
        "https://example.com/p?id=7&page=2",
    ),
    (
        "https://example.com/p?UTM_Source=x&FBCLID=y&q=1",
        "https://example.com/p?q=1",
        "https://example.com/p?q=1",
    ),
    ("https://example.com/p?fbclid", "https://example.com/p", "https://example.com/p"),
    # Not tracking: a real parameter that merely resembles one.
    (
        "https://example.com/p?utm=1&source=rss",
        "https://example.com/p?utm=1&source=rss",
        "https://example.com/p?utm=1&source=rss",
    ),
    # Fragments: dropped from the key, kept (tracking-free) for display.
    ("https://example.com/p#section-2", "https://example.com/p", "https://example.com/p#section-2"),
    (
        "https://example.com/p?utm_source=x#:~:text=hi",
        "https://example.com/p",
        "https://example.com/p#:~:text=hi",
    ),
    # Characters that cannot stand in a URL are percent-encoded, in both.
    ("https://example.com/a b", "https://example.com/a%20b", "https://example.com/a%20b"),
    ("https://example.com/a[1]", "https://example.com/a%5B1%5D", "https://example.com/a%5B1%5D"),
    ("https://example.com/(x)", "https://example.com/(x)", "https://example.com/(x)"),
    (
        "https://example.com/p?q=a b&r=<c>",
        "https://example.com/p?q=a%20b&r=%3Cc%3E",
        "https://example.com/p?q=a%20b&r=%3Cc%3E",
    ),
    ("https://example.com/p#a b", "https://example.com/p", "https://example.com/p#a%20b"),
    ("https://example.com/é", "https://example.com/é", "https://example.com/é"),
    # Surrounding whitespace is not part of the URL.
    ("  https://example.com/p \n", "https://example.com/p", "https://example.com/p"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "key", "shown"), CASES, ids=[c[0] for c in CASES])
def test_canonical_and_strip_tracking(url: str, key: str, shown: str) -> None:
    assert canonical(url) == key
    assert strip_tracking(url) == shown


@pytest.mark.parametrize(("url", "key", "shown"), CASES, ids=[c[0] for c in CASES])
def test_idempotent(url: str, key: str, shown: str) -> None:
    """A key is its own key, a displayed URL displays as itself, and both name the same story."""
    assert canonical(key) == key
    assert strip_tracking(shown) == shown
    assert canonical(shown) == key


def test_empty_path_variants_are_one_story() -> None:
    spellings = [
        "https://www.ricord.ai",
        "https://www.ricord.ai/",
        "https://WWW.ricord.ai:443",
        "https://www.ricord.ai:443/?utm_source=x#top",
        "https://someone@www.ricord.ai?",
    ]
    assert {canonical(u) for u in spellings} == {"https://www.ricord.ai/"}
    assert canonical("http://www.ricord.ai") != canonical("https://www.ricord.ai")


def test_strip_tracking_never_adds_a_slash() -> None:
    for url, _, shown in CASES:
        assert shown.count("/") == url.strip().count("/"), url


@pytest.mark.parametrize(
    "name",
    [
        "utm_source",
        "utm_medium",
        "UTM_Campaign",
        "utm_",
        "fbclid",
        "gclid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
    ],
)
def test_tracking_params(name: str) -> None:
    assert is_tracking_param(name)


@pytest.mark.parametrize("name", ["id", "page", "q", "utm", "source", "mc", "gcl", "ref", ""])
def test_real_params(name: str) -> None:
    assert not is_tracking_param(name)


BASE = "https://example.com/blog/post.html"

# (href, base, web_url)
WEB_URLS = [
    # Absolute http(s) as written.
    ("https://example.com/a", None, "https://example.com/a"),
    ("http://example.com/a", None, "http://example.com/a"),
    ("https://example.com", None, "https://example.com"),
    ("https://example.com/a", BASE, "https://example.com/a"),
    # Relative references resolved against the base.
    ("/a", BASE, "https://example.com/a"),
    ("a", BASE, "https://example.com/blog/a"),
    ("../x?y=1", BASE, "https://example.com/x?y=1"),
    ("//cdn.example.net/x", BASE, "https://cdn.example.net/x"),
    ("#top", BASE, "https://example.com/blog/post.html#top"),
    ("?q=1", BASE, "https://example.com/blog/post.html?q=1"),
    ("other/", "https://example.com", "https://example.com/other/"),
    # Relative with no base, or no host: not a web URL.
    ("/a", None, None),
    ("relative", None, None),
    ("https:///x", None, None),
    ("http:", None, None),
    ("http://[::1", None, None),
    # Surrounding whitespace is trimmed; blank is no link (not the base).
    ("  /a \n", BASE, "https://example.com/a"),
    ("\thttps://example.com/x \n", None, "https://example.com/x"),
    ("", BASE, None),
    ("   ", BASE, None),
    (" \n\t", None, None),
    (None, BASE, None),
    # Other schemes, however disguised, are never links.
    ("javascript:alert(1)", BASE, None),
    ("  JavaScript:alert(1)", BASE, None),
    ("java\tscript:alert(1)", BASE, None),
    ("&#106;avascript:alert(1)", BASE, None),
    ("vbscript:msgbox(1)", BASE, None),
    ("data:text/html,<script>alert(1)</script>", BASE, None),
    ("DATA:image/png;base64,AAAA", None, None),
    ("file:///etc/passwd", BASE, None),
    ("file://localhost/etc/shadow", None, None),
    ("ftp://example.com/x", BASE, None),
    ("mailto:someone@example.com", BASE, None),
    # A relative href against a base that is not a web URL is not one either.
    ("a", "file:///etc/", None),
]


@pytest.mark.parametrize(
    ("href", "base", "expected"), WEB_URLS, ids=[repr(w[:2]) for w in WEB_URLS]
)
def test_web_url(href: str | None, base: str | None, expected: str | None) -> None:
    assert web_url(href, base) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.Example.com/a", "example.com"),
        ("https://evil@www.theregister.com/x", "theregister.com"),
        ("https://[2001:DB8::1]:443/", "2001:db8::1"),
        ("https://wwwexample.com/", "wwwexample.com"),
        (None, None),
        ("relative", None),
        ("http://[::1", None),
    ],
)
def test_host_of(url: str | None, host: str | None) -> None:
    assert host_of(url) == host
