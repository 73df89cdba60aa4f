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


# Every entry with a web link, with its feed and whether that feed published the story:
# the digest titles a story by such a sighting (digest.select_day's rule).
SIGHTINGS = f"""
SELECT id, feed_id, feed_name, feed_position, feed_active, title, url, canonical_url,
       dated, link_host,
       coalesce(link_host = site_host, 0) OR coalesce(link_host = feed_host, 0) AS publisher
FROM (
  SELECT entries.id, entries.feed_id, feeds.name AS feed_name,
         feeds.position AS feed_position, feeds.active AS feed_active,
         entries.title, entries.url, entries.canonical_url, entries.dated,
         {host_sql("entries.canonical_url")} AS link_host,
         {host_sql("feeds.site_url")} AS site_host,
         {host_sql("feeds.url")} AS feed_host
  FROM entries JOIN feeds ON feeds.id = entries.feed_id
  WHERE entries.canonical_url IS NOT NULL
)
"""

# Every URL an entry points to: its outbound links, and its own story URL (a feed that
# links to another feed's story cites it too). The most-cited queries count feeds here.
MENTIONS = """
SELECT links.url AS url, 'link' AS kind, links.text AS text, entries.id AS entry_id,
       entries.feed_id AS feed_id, feeds.name AS feed_name, entries.dated AS dated
FROM links
JOIN entries ON entries.id = links.entry_id
JOIN feeds ON feeds.id = entries.feed_id
UNION ALL
SELECT entries.canonical_url, 'entry', entries.title, entries.id, entries.feed_id,
       feeds.name, entries.dated
FROM entries JOIN feeds ON feeds.id = entries.feed_id
WHERE entries.canonical_url IS NOT NULL
"""

VIEWS: dict[str, str] = {
    "sightings": SIGHTINGS,
    "mentions": MENTIONS,
}
