"""A generated, deterministic corpus for the benchmarks: RSS 2.0 feeds and parsed entries.

Nothing here is committed as data: every feed is built from a seed, so a run on another
machine measures the same bytes.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape

from aggregator.models import OutboundLink, ParsedEntry

WORDS = (
    "feed parser entry story cloud quota inflation model token server kernel release "
    "patch browser privacy market startup funding policy court ruling climate energy "
    "battery network outage security breach research paper open source license vendor "
    "chip memory storage latency throughput benchmark database index query cache "
    "the a of and to in for on with by from at as is was are be it this that"
).split()
HOSTS = (
    "www.example.com", "news.example.org", "blog.example.net", "techcrunch.example",
    "theregister.example", "lwn.example", "arstechnica.example", "github.example",
)  # fmt: skip
TRACKING = ("utm_source=rss&utm_medium=feed", "fbclid=abc123", "ref=home", "")
EPOCH = datetime(2026, 4, 1, tzinfo=UTC)


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def url(rng: random.Random, host: str | None = None) -> str:
    host = host or rng.choice(HOSTS)
    path = "/".join(rng.choice(WORDS) for _ in range(3))
    query = rng.choice(TRACKING)
    return f"https://{host}/2026/04/{rng.randint(1, 28):02d}/{path}-{rng.randint(1, 10**6)}" + (
        f"?{query}" if query else ""
    )


def article_html(rng: random.Random, size: int, links: int = 6) -> str:
    """About `size` characters of article HTML: paragraphs, links (some relative, some
    with tracking parameters), an image, entities, a list, and a script to sanitise."""
    parts = [f"<p>{escape(words(rng, 12))} &amp; “{words(rng, 3)}” &mdash; <em>more</em></p>"]
    made = 0
    while sum(map(len, parts)) < size:
        kind = rng.random()
        if made < links and kind < 0.45:
            href = url(rng) if rng.random() < 0.8 else f"/related/{rng.randint(1, 999)}"
            parts.append(
                f'<p>{words(rng, 20)} <a href="{escape(href)}" title="{words(rng, 2)}">'
                f"{words(rng, 3)}</a> {words(rng, 25)}.</p>"
            )
            made += 1
        elif kind < 0.55:
            parts.append(
                f'<figure><img src="https://cdn.example.com/i/{rng.randint(1, 10**6)}.jpg" '
                f'alt="{words(rng, 4)}" width="640" height="360">'
                f"<figcaption>{words(rng, 8)}</figcaption></figure>"
            )
        elif kind < 0.62:
            parts.append("<ul>" + "".join(f"<li>{words(rng, 6)}</li>" for _ in range(4)) + "</ul>")
        elif kind < 0.65:
            parts.append(
                "<script>track('view')</script><blockquote>" + words(rng, 15) + "</blockquote>"
            )
        else:
            parts.append(
                f"<p>{words(rng, 40)}. <strong>{words(rng, 4)}</strong> {words(rng, 20)}.</p>"
            )
    return "".join(parts)


def rss_feed(
    seed: int,
    items: int,
    content_size: int = 3000,
    *,
    host: str = "www.example.com",
    start: datetime = EPOCH,
) -> bytes:
    """A WordPress-like RSS 2.0 document: description excerpt plus content:encoded HTML."""
    rng = random.Random(seed)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>Feed {seed}: {escape(words(rng, 3))}</title>\n"
        f"<link>https://{host}/</link>\n<description>{escape(words(rng, 10))}</description>\n"
        "<language>en</language>\n<ttl>60</ttl>\n"
    ]
    for i in range(items):
        link = url(rng, host)
        published = start - timedelta(minutes=37 * i + rng.randint(0, 30))
        html = article_html(rng, content_size)
        out.append(
            "<item>\n"
            f"<title>{escape(words(rng, 9).capitalize())} &amp; {escape(words(rng, 2))}</title>\n"
            f"<link>{escape(link)}</link>\n"
            f'<guid isPermaLink="false">{host}-{seed}-{i}</guid>\n'
            f"<pubDate>{format_datetime(published)}</pubDate>\n"
            f"<dc:creator><![CDATA[{words(rng, 2).title()}]]></dc:creator>\n"
            f"<category><![CDATA[{rng.choice(WORDS)}]]></category>\n"
            f"<category><![CDATA[{rng.choice(WORDS)}]]></category>\n"
            f"<description><![CDATA[<p>{words(rng, 40)} [&#8230;]</p>]]></description>\n"
            f"<content:encoded><![CDATA[{html}]]></content:encoded>\n"
            "</item>\n"
        )
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode()


def rss_of_size(seed: int, size: int, content_size: int = 3000) -> bytes:
    """An RSS document of at least `size` bytes, in whole items."""
    ten, twenty = (len(rss_feed(seed, n, content_size)) for n in (10, 20))
    per_item = (twenty - ten) / 10
    items = max(1, math.ceil((size - (ten - 10 * per_item)) / per_item))
    body = rss_feed(seed, items, content_size)
    while len(body) < size:  # the estimate fell short: items vary in size
        items += max(1, math.ceil((size - len(body)) / per_item))
        body = rss_feed(seed, items, content_size)
    return body


def parsed_entries(
    seed: int, count: int, *, host: str, full_text: float = 0.3, links: int = 5
) -> tuple[ParsedEntry, ...]:
    """Entries as the parser hands them to the store (plain summary, canonical links),
    without paying for parsing: for the store benchmark. Summaries are a ~250-character
    excerpt, or (a `full_text` share of them, feeds without a description) ~2.5 KB."""
    rng = random.Random(seed)
    entries = []
    for i in range(count):
        published = EPOCH - timedelta(minutes=37 * i + rng.randint(0, 30))
        size = 2500 if rng.random() < full_text else 250
        summary = words(rng, size // 5)[:size]
        entries.append(
            ParsedEntry(
                guid=f"{host}-{seed}-{i}",
                link=url(rng, host),
                title=words(rng, 9).capitalize(),
                published=published,
                updated=None,
                author=words(rng, 2).title(),
                summary=summary,
                tags=(rng.choice(WORDS), rng.choice(WORDS)),
                links=tuple(
                    OutboundLink(url=url(rng).split("?")[0], text=words(rng, 3))
                    for _ in range(links)
                ),
            )
        )
    return tuple(entries)
