"""HTML from feeds to plain text and outbound links (BeautifulSoup). Contains no business logic."""

from __future__ import annotations

import re
import unicodedata
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag

from aggregator.models import OutboundLink
from aggregator.urls import canonical, web_url

TITLE_MAX = 1024
SUMMARY_MAX = 20_000

_DROP = ("script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "math")
_BLOCK = (
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "pre", "section", "article", "header", "footer", "figure", "figcaption", "hr",
    "dd", "dt", "dl",
)  # fmt: skip
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_ANY_SPACE = re.compile(r"\s+")
_SCRIPT = re.compile(r"<\s*script", re.IGNORECASE)

warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)


def _soup(markup: str) -> BeautifulSoup:
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    return soup


def clean_chars(text: str) -> str:
    """Drop control and format characters a feed may smuggle in; keep newlines, tabs, ZWJ."""
    return "".join(
        ch
        for ch in text
        if ch in "\n\t\u200d" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )


def _truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def one_line(text: str | None, limit: int | None = TITLE_MAX) -> str | None:
    """Plain text on one line: whitespace collapsed, control characters removed."""
    if text is None:
        return None
    text = _ANY_SPACE.sub(" ", clean_chars(text)).strip()
    return _truncate(text, limit) or None


def html_to_text(markup: str | None) -> str | None:
    """Visible text of an HTML fragment; block elements become line breaks."""
    if not markup:
        return None
    if "<" not in markup and "&" not in markup:
        return markup
    soup = _soup(markup)
    for tag in soup.find_all(_BLOCK):
        tag.insert_after("\n")
    return soup.get_text()


def _visible(text: str, is_html: bool) -> str:
    """The text a reader sees. Plain text is kept as written, `<b>` and all, unless it spells
    a script tag: stored text may reach someone's HTML unescaped, so a script never survives,
    whether the text is plain or HTML escaped twice (`&amp;lt;script&amp;gt;`)."""
    if is_html:
        text = html_to_text(text) or ""
    for _ in range(3):
        if not _SCRIPT.search(text):
            return text
        text = html_to_text(text) or ""
    return _SCRIPT.sub("script", text)


def plain_title(text: str | None, is_html: bool = True) -> str | None:
    return one_line(_visible(text, is_html) if text else None, TITLE_MAX)


def plain_summary(text: str | None, is_html: bool = True) -> str | None:
    if text is None:
        return None
    text = clean_chars(_visible(text, is_html) or "")
    text = _NEWLINES.sub("\n", _SPACES.sub(" ", text)).strip()
    return _truncate(text, SUMMARY_MAX) or None


def outbound_links(markup: str | None, base_url: str | None) -> tuple[OutboundLink, ...]:
    """Every http(s) link in the fragment, absolute and canonical, once each, in order."""
    if not markup or "<a" not in markup.lower():
        return ()
    seen: dict[str, OutboundLink] = {}
    for anchor in _soup(markup).find_all("a", href=True):
        if not isinstance(anchor, Tag):
            continue
        href = anchor.get("href")
        url = web_url(href if isinstance(href, str) else None, base_url)
        if url is None:
            continue
        key = canonical(url)
        if key not in seen:
            seen[key] = OutboundLink(url=key, text=one_line(anchor.get_text(" "), 500))
    return tuple(seen.values())
