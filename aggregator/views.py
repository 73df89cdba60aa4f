"""SQL views created in every database, for Datasette and for ad-hoc queries.

Schema as data: `store.ensure_shape` drops and recreates each view on open. The canned
queries in `datasette/metadata.yml` build on these views; plain SQL only, so that
`datasette aggregator.db -m metadata.yml` needs no plugin.
"""

from __future__ import annotations


def host_sql(url: str) -> str:
    """SQL for `urls.host_of(url)`: the lowercased host, without port, user info or a
    leading `www.`; NULL for NULL or a URL without `://`. Each step is one nested SELECT,
    so every step names the previous one once."""
    return f"""(
      SELECT nullif(CASE WHEN h LIKE 'www.%' THEN substr(h, 5) ELSE h END, '') FROM (
        SELECT lower(CASE
          WHEN substr(a, 1, 1) = '[' THEN substr(a, 2, instr(a, ']') - 2)
          WHEN instr(a, ':') > 0 THEN substr(a, 1, instr(a, ':') - 1)
          ELSE a END) AS h FROM (
          SELECT substr(a, instr(a, '@') + 1) AS a FROM (
            SELECT substr(r, 1, min(
              instr(r, '/'),
              coalesce(nullif(instr(r, '?'), 0), 1000000000),
              coalesce(nullif(instr(r, '#'), 0), 1000000000)) - 1) AS a FROM (
              SELECT substr(u, instr(u, '://') + 3) || '/' AS r FROM (
                SELECT {url} AS u WHERE instr({url}, '://') > 0)))))
    )"""


# Every entry with a web link, with its feed and how that feed relates to the story's host
# (digest.publisher_rank): publisher_rank 0 when the feed is served from the link's host
# (its current URL if it moved, else its URL), 1 when the feed declares that host as its
# site, else 2. The digest titles a story by its lowest (publisher_rank, inactive,
# feed_position, dated, id) sighting. `IS` compares as Python's `==` does (None == None).
SIGHTINGS = f"""
SELECT id, feed_id, feed_name, feed_position, feed_active, title, url, canonical_url,
       dated, link_host, publisher_rank, publisher_rank < 2 AS publisher
FROM (
  SELECT id, feed_id, feed_name, feed_position, feed_active, title, url, canonical_url,
         dated, link_host,
         CASE WHEN link_host IS feed_host THEN 0 WHEN link_host IS site_host THEN 1
              ELSE 2 END AS publisher_rank
  FROM (
    SELECT entries.id, entries.feed_id, feeds.name AS feed_name,
           feeds.position AS feed_position, feeds.active AS feed_active,
           entries.title, entries.url, entries.canonical_url, entries.dated,
           {host_sql("entries.canonical_url")} AS link_host,
           {host_sql("coalesce(nullif(feeds.current_url, ''), feeds.url)")} AS feed_host,
           {host_sql("feeds.site_url")} AS site_host
    FROM entries JOIN feeds ON feeds.id = entries.feed_id
    WHERE entries.canonical_url IS NOT NULL
  )
)
"""

# Every URL an entry cites, by store.CITING's rule (what `aggregator refs` counts): the
# URLs its HTML links to except its own, and its own story URL when that points off its
# feed (the link's host is none of the feed's site, URL and current URL hosts: an
# aggregator linking out). A publisher's own entry is the story, not a mention of it.
# The most-cited queries count distinct feeds here.
MENTIONS = f"""
SELECT links.url AS url, 'link' AS kind, links.text AS text, entries.id AS entry_id,
       entries.feed_id AS feed_id, feeds.name AS feed_name, entries.dated AS dated
FROM links
JOIN entries ON entries.id = links.entry_id
JOIN feeds ON feeds.id = entries.feed_id
WHERE links.url IS NOT entries.canonical_url
UNION ALL
SELECT entries.canonical_url, 'entry', entries.title, entries.id, entries.feed_id,
       feeds.name, entries.dated
FROM entries JOIN feeds ON feeds.id = entries.feed_id
WHERE entries.canonical_url IS NOT NULL
  AND {host_sql("entries.canonical_url")} NOT IN (
      coalesce({host_sql("feeds.site_url")}, ''),
      coalesce({host_sql("feeds.url")}, ''),
      coalesce({host_sql("feeds.current_url")}, ''))
"""

VIEWS: dict[str, str] = {
    "sightings": SIGHTINGS,
    "mentions": MENTIONS,
}
