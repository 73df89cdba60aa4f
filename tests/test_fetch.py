"""fetch() against real servers on 127.0.0.1: what crosses the wire and what the user sees.

pytest-httpserver serves ordinary responses; a small ThreadingHTTPServer (`raw_server`)
does what it cannot: stall, trickle bytes, close mid-body, and handle requests in parallel.
Every wait is bounded by the small timeouts in OPTIONS.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug import Request, Response

from aggregator.errors import FetchError
from aggregator.fetch import FetchOptions, HostLimiter, fetch, retry_after
from aggregator.models import FeedSpec, FeedState
from aggregator.poll import PollOptions, poll, poll_many, watchdog_limit
from aggregator.schedule import Policy

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
UA = "aggregator-test/1.0 (+https://example.org/bot)"
OPTIONS = FetchOptions(
    user_agent=UA, connect_timeout=1.0, read_timeout=0.5, deadline=1.5, max_bytes=1_000_000
)
RSS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<rss version="2.0"><channel><title>Tiny</title><link>https://example.com/</link>'
    b"<description>Tiny feed</description>"
    b"<item><title>Only item</title><link>https://example.com/only</link>"
    b"<guid>https://example.com/only</guid>"
    b"<pubDate>Mon, 20 Apr 2026 08:00:00 GMT</pubDate></item>"
    b"</channel></rss>\n"
)
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}


def get(url: str, options: FetchOptions = OPTIONS, **kwargs: Any) -> Any:
    return fetch(url, options, NOW, **kwargs)


def fetch_error(url: str, options: FetchOptions = OPTIONS, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, options, NOW, **kwargs)
    error = info.value
    assert str(error).startswith(f"{url}: "), str(error)
    assert error.url == url
    return error


def poll_options(**fetch_overrides: Any) -> PollOptions:
    return PollOptions(fetch=replace(OPTIONS, **fetch_overrides), policy=Policy())


def state_for(url: str, **kwargs: Any) -> FeedState:
    return FeedState(spec=FeedSpec(url=url, name="Test", interval=timedelta(seconds=30)), **kwargs)


def sent(httpserver: Any, index: int = -1) -> Any:
    """Headers of a request the server received."""
    request, _response = httpserver.log[index]
    return request.headers


# --- a hand-rolled loopback server for stalls, trickles and concurrency ---------------

Route = Callable[["RawHandler"], None]


class RawServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RawHandler)
        self.routes: dict[str, Route] = {}
        self.stop = threading.Event()  # set in teardown: every handler wait ends

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"


class RawHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RawServer

    def do_GET(self) -> None:  # noqa: N802 (the http.server spelling)
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            self.send_error(404)
            return
        try:
            route(self)
        except OSError:  # the client gave up and closed the socket
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def start(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- 200, headers on the wire, conditional GET ----------------------------------------


def test_200_returns_body_and_headers(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        RSS, headers={**RSS_TYPE, "ETag": '"v1"', "Last-Modified": "Mon, 20 Apr 2026 08:00:00 GMT"}
    )
    url = httpserver.url_for("/feed")
    result = get(url)
    assert result.status == 200
    assert result.body == RSS
    assert result.url == result.final_url == url
    assert result.permanent_url is None
    assert not result.not_modified
    assert result.headers["etag"] == '"v1"'
    assert result.headers["content-type"] == RSS_TYPE["Content-Type"]
    assert result.fetched_at == NOW
    assert 0 <= result.elapsed_s < OPTIONS.deadline


def test_sends_user_agent_accept_and_no_validators(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(RSS, headers=RSS_TYPE)
    get(httpserver.url_for("/feed"))
    headers = sent(httpserver)
    assert headers["User-Agent"] == UA
    assert "application/rss+xml" in headers["Accept"]
    assert "application/atom+xml" in headers["Accept"]
    assert "gzip" in headers["Accept-Encoding"]
    assert "If-None-Match" not in headers
    assert "If-Modified-Since" not in headers


def test_conditional_get_sends_validators_and_304_has_no_body(httpserver: Any) -> None:
    last_modified = "Mon, 20 Apr 2026 08:00:00 GMT"
    httpserver.expect_request(
        "/feed", headers={"If-None-Match": '"v1"', "If-Modified-Since": last_modified}
    ).respond_with_data(b"", status=304, headers={"ETag": '"v1"'})
    result = get(httpserver.url_for("/feed"), etag='"v1"', last_modified=last_modified)
    assert result.status == 304
    assert result.not_modified
    assert result.body is None
    assert sent(httpserver)["If-None-Match"] == '"v1"'
    assert sent(httpserver)["If-Modified-Since"] == last_modified


def test_only_the_validator_given_is_sent(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"", status=304)
    assert get(httpserver.url_for("/feed"), etag='W/"weak"').status == 304
    headers = sent(httpserver)
    assert headers["If-None-Match"] == 'W/"weak"'
    assert "If-Modified-Since" not in headers


# --- redirects ------------------------------------------------------------------------


def redirect(httpserver: Any, path: str, status: int, location: str) -> None:
    httpserver.expect_request(path).respond_with_data(
        b"moved", status=status, headers={"Location": location}
    )


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_sets_permanent_url(httpserver: Any, status: int) -> None:
    redirect(httpserver, "/old", status, httpserver.url_for("/new"))
    httpserver.expect_request("/new").respond_with_data(RSS, headers=RSS_TYPE)
    url = httpserver.url_for("/old")
    result = get(url)
    assert result.status == 200
    assert result.body == RSS
    assert result.url == url
    assert result.final_url == httpserver.url_for("/new")
    assert result.permanent_url == httpserver.url_for("/new")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_is_not_permanent(httpserver: Any, status: int) -> None:
    redirect(httpserver, "/old", status, httpserver.url_for("/new"))
    httpserver.expect_request("/new").respond_with_data(RSS, headers=RSS_TYPE)
    result = get(httpserver.url_for("/old"))
    assert result.status == 200
    assert result.final_url == httpserver.url_for("/new")
    assert result.permanent_url is None


def test_relative_location_is_resolved(httpserver: Any) -> None:
    redirect(httpserver, "/a/old", 301, "../new")
    httpserver.expect_request("/new").respond_with_data(RSS, headers=RSS_TYPE)
    result = get(httpserver.url_for("/a/old"))
    assert result.final_url == result.permanent_url == httpserver.url_for("/new")


def test_permanent_then_temporary_chain_is_not_permanent(httpserver: Any) -> None:
    redirect(httpserver, "/one", 301, httpserver.url_for("/two"))
    redirect(httpserver, "/two", 302, httpserver.url_for("/three"))
    httpserver.expect_request("/three").respond_with_data(RSS, headers=RSS_TYPE)
    result = get(httpserver.url_for("/one"))
    assert result.final_url == httpserver.url_for("/three")
    assert result.permanent_url is None


def test_redirect_hops_carry_user_agent_and_validators(httpserver: Any) -> None:
    redirect(httpserver, "/old", 301, httpserver.url_for("/new"))
    httpserver.expect_request("/new").respond_with_data(b"", status=304)
    result = get(httpserver.url_for("/old"), etag='"v9"')
    assert result.status == 304
    assert [r.path for r, _ in httpserver.log] == ["/old", "/new"]
    for index in (0, 1):
        assert sent(httpserver, index)["User-Agent"] == UA
        assert sent(httpserver, index)["If-None-Match"] == '"v9"'


def chain(httpserver: Any, hops: int) -> str:
    """/r0 -> /r1 -> ... -> /r{hops} (200); returns the first URL."""
    for i in range(hops):
        redirect(httpserver, f"/r{i}", 301, httpserver.url_for(f"/r{i + 1}"))
    httpserver.expect_request(f"/r{hops}").respond_with_data(RSS, headers=RSS_TYPE)
    return str(httpserver.url_for("/r0"))


def test_max_redirects_are_followed(httpserver: Any) -> None:
    result = get(chain(httpserver, 2), replace(OPTIONS, max_redirects=2))
    assert result.status == 200
    assert result.final_url == result.permanent_url == httpserver.url_for("/r2")


def test_more_than_max_redirects_raises(httpserver: Any) -> None:
    url = chain(httpserver, 3)
    error = fetch_error(url, replace(OPTIONS, max_redirects=2))
    assert "more than 2 redirects" in str(error)
    assert [r.path for r, _ in httpserver.log] == ["/r0", "/r1", "/r2"]  # /r3 never asked


def test_redirect_loop_raises(httpserver: Any) -> None:
    redirect(httpserver, "/loop", 302, httpserver.url_for("/loop"))
    error = fetch_error(httpserver.url_for("/loop"))
    assert f"more than {OPTIONS.max_redirects} redirects" in str(error)
    assert len(httpserver.log) == OPTIONS.max_redirects + 1


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "gopher://127.0.0.1/1"]
)
def test_redirect_to_non_http_location_raises(httpserver: Any, location: str) -> None:
    redirect(httpserver, "/old", 301, location)
    error = fetch_error(httpserver.url_for("/old"))
    assert "non-http(s)" in str(error)
    assert location in str(error)
    assert "root:" not in str(error)
    assert len(httpserver.log) == 1


def test_redirect_to_local_file_never_reads_it(httpserver: Any, tmp_path: Any) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(RSS)
    redirect(httpserver, "/old", 302, secret.as_uri())
    error = fetch_error(httpserver.url_for("/old"))
    assert secret.as_uri() in str(error)
    assert "Only item" not in str(error)


def test_redirect_without_location_is_a_result(httpserver: Any) -> None:
    httpserver.expect_request("/odd").respond_with_data(b"", status=301)
    result = get(httpserver.url_for("/odd"))
    assert result.status == 301
    assert result.body is None


# --- HTTP error statuses --------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500])
def test_error_status_is_a_result_without_body(httpserver: Any, status: int) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"<html>nope</html>", status=status)
    result = get(httpserver.url_for("/feed"))
    assert result.status == status
    assert result.body is None


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"), (410, "Gone")])
def test_poll_turns_404_and_410_into_errors(httpserver: Any, status: int, reason: str) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"nope", status=status)
    url = httpserver.url_for("/feed")
    outcome = poll(state_for(url), poll_options(), NOW)
    assert outcome.error is not None
    assert outcome.error.type == "FetchError"
    assert outcome.error.status == status
    assert outcome.error.message == f"{url}: HTTP {status} {reason}"
    assert outcome.error.retry_after is None
    assert outcome.fetch is not None and outcome.fetch.status == status
    assert outcome.parsed is None
    assert not outcome.unchanged
    assert outcome.next_fetch_at > NOW


# --- Retry-After ----------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    assert retry_after("120", NOW) == NOW + timedelta(seconds=120)
    assert retry_after(" 0 ", NOW) == NOW


def test_retry_after_http_date() -> None:
    expected = datetime(2026, 4, 20, 18, 30, tzinfo=UTC)
    assert retry_after("Mon, 20 Apr 2026 18:30:00 GMT", NOW) == expected
    assert retry_after("Mon, 20 Apr 2026 20:30:00 +0200", NOW) == expected
    assert retry_after("Mon, 20 Apr 2026 18:30:00", NOW) == expected  # no zone: UTC
    moment = retry_after("Mon, 20 Apr 2026 20:30:00 +0200", NOW)
    assert moment is not None and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "1.5",
        "120 seconds",
        "Mon, 32 Apr 2026 18:30:00 GMT",
        "Mon, 20 Foo 2026 18:30:00 GMT",
        "²",  # str.isdigit() says yes, int() says no
        "9" * 40,  # more seconds than a datetime can hold
        "Mon, 20 Apr 99999 18:30:00 GMT",
    ],
)
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert retry_after(value, NOW) is None


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        (format_datetime(NOW + timedelta(hours=6), usegmt=True), NOW + timedelta(hours=6)),
    ],
    ids=["seconds", "http-date"],
)
def test_poll_honours_retry_after(
    httpserver: Any, status: int, header: str, expected: datetime
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        b"slow down", status=status, headers={"Retry-After": header}
    )
    url = httpserver.url_for("/feed")
    outcome = poll(state_for(url), poll_options(), NOW)
    assert outcome.error is not None
    assert outcome.error.status == status
    assert outcome.error.message.startswith(f"{url}: HTTP {status}")
    assert outcome.error.retry_after == expected
    # The feed's interval is 30 s, so only Retry-After can push the next fetch this far.
    assert outcome.next_fetch_at >= expected


def test_poll_ignores_garbage_retry_after(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        b"slow down", status=429, headers={"Retry-After": "9" * 40}
    )
    outcome = poll(state_for(httpserver.url_for("/feed")), poll_options(), NOW)
    assert outcome.error is not None and outcome.error.status == 429
    assert outcome.error.retry_after is None
    assert outcome.next_fetch_at > NOW


# --- compression and the size cap -----------------------------------------------------


def test_gzip_body_is_decompressed(httpserver: Any) -> None:
    body = RSS + b"<!--" + b"padding " * 40_000 + b"-->"  # spans several read chunks
    httpserver.expect_request("/feed").respond_with_data(
        gzip.compress(body), headers={**RSS_TYPE, "Content-Encoding": "gzip"}
    )
    result = get(httpserver.url_for("/feed"))
    assert result.status == 200
    assert result.body == body


def test_chunked_gzip_body_is_decompressed(raw_server: RawServer) -> None:
    body = RSS * 2000
    packed = gzip.compress(body)

    def chunked_gzip(h: RawHandler) -> None:
        h.start(200, {"Content-Encoding": "gzip", "Transfer-Encoding": "chunked"})
        for i in range(0, len(packed), 1000):
            piece = packed[i : i + 1000]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        h.wfile.write(b"0\r\n\r\n")

    raw_server.routes["/feed"] = chunked_gzip
    assert get(raw_server.url("/feed")).body == body


def test_corrupt_gzip_raises(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        RSS, headers={**RSS_TYPE, "Content-Encoding": "gzip"}
    )
    error = fetch_error(httpserver.url_for("/feed"))
    assert "cannot decompress the response" in str(error)


def test_gzip_bomb_raises_at_the_cap(httpserver: Any) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000, compresslevel=9)
    assert len(bomb) < 10_000
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={**RSS_TYPE, "Content-Encoding": "gzip"}
    )
    error = fetch_error(httpserver.url_for("/bomb"))
    assert "exceeds the cap of 1,000,000 bytes" in str(error)


def test_declared_length_over_cap_raises(httpserver: Any) -> None:
    httpserver.expect_request("/huge").respond_with_data(b"x" * 1_000_001, headers=RSS_TYPE)
    error = fetch_error(httpserver.url_for("/huge"))
    assert "1,000,001 bytes exceeds the cap of 1,000,000 bytes" in str(error)


def test_declared_length_over_cap_raises_before_reading(raw_server: RawServer) -> None:
    """The server promises a terabyte and sends nothing: only the header can be checked."""

    def promise(h: RawHandler) -> None:
        h.start(200, {"Content-Length": str(10**12)})
        h.server.stop.wait(5)

    raw_server.routes["/huge"] = promise
    started = time.monotonic()
    error = fetch_error(raw_server.url("/huge"))
    assert "1,000,000,000,000 bytes exceeds the cap" in str(error)
    assert time.monotonic() - started < OPTIONS.read_timeout


def test_exactly_max_bytes_is_accepted(httpserver: Any) -> None:
    body = b"x" * 1000
    httpserver.expect_request("/feed").respond_with_data(body)
    assert get(httpserver.url_for("/feed"), replace(OPTIONS, max_bytes=1000)).body == body


def test_undeclared_body_over_cap_raises(httpserver: Any) -> None:
    def stream(request: Request) -> Response:
        return Response(iter([b"x" * 100_000] * 20), content_type="application/rss+xml")

    httpserver.expect_request("/huge").respond_with_handler(stream)
    url = httpserver.url_for("/huge")
    error = fetch_error(url)
    assert "response exceeds the cap of 1,000,000 bytes" in str(error)
    assert "content-length" not in {k.lower() for k, _ in httpserver.log[-1][1].headers}


def test_one_session_keeps_its_connection_alive(raw_server: RawServer) -> None:
    """Reading the body to the end hands the connection back for the next feed."""
    packed = gzip.compress(RSS * 100)
    peers: list[int] = []

    def plain(h: RawHandler) -> None:
        peers.append(h.client_address[1])
        h.start(200, {"Content-Length": str(len(RSS))})
        h.wfile.write(RSS)

    def gzipped(h: RawHandler) -> None:
        peers.append(h.client_address[1])
        h.start(200, {"Content-Length": str(len(packed)), "Content-Encoding": "gzip"})
        h.wfile.write(packed)

    def chunked(h: RawHandler) -> None:
        peers.append(h.client_address[1])
        h.start(200, {"Transfer-Encoding": "chunked"})
        h.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(RSS), RSS))

    raw_server.routes.update({"/plain": plain, "/gzip": gzipped, "/chunked": chunked})
    with requests.Session() as session:
        bodies = [
            get(raw_server.url(path), session=session).body
            for path in ("/plain", "/gzip", "/chunked", "/plain")
        ]
    assert bodies == [RSS, RSS * 100, RSS, RSS]
    assert len(set(peers)) == 1, peers


# --- slow, broken and absent servers --------------------------------------------------


def test_no_response_within_read_timeout(raw_server: RawServer) -> None:
    def silent(h: RawHandler) -> None:
        h.server.stop.wait(5)

    raw_server.routes["/silent"] = silent
    url = raw_server.url("/silent")
    started = time.monotonic()
    error = fetch_error(url)
    assert time.monotonic() - started < OPTIONS.read_timeout + 1.0
    assert "timed out" in str(error)
    assert "read 0.5s" in str(error)
    assert isinstance(error.__cause__, requests.Timeout)


def test_body_stalls_longer_than_read_timeout(raw_server: RawServer) -> None:
    def stall(h: RawHandler) -> None:
        h.start(200, {"Content-Length": "1000", **RSS_TYPE})
        h.wfile.write(RSS[:40])
        h.server.stop.wait(5)

    raw_server.routes["/stall"] = stall
    url = raw_server.url("/stall")
    started = time.monotonic()
    error = fetch_error(url)
    assert time.monotonic() - started < OPTIONS.read_timeout + 1.0
    assert "timed out" in str(error)
    assert "cannot connect" not in str(error)


@pytest.mark.parametrize("chunked", [False, True], ids=["until-close", "chunked"])
def test_trickling_body_stops_at_the_deadline(raw_server: RawServer, chunked: bool) -> None:
    def trickle(h: RawHandler) -> None:
        h.start(200, {**RSS_TYPE, **({"Transfer-Encoding": "chunked"} if chunked else {})})
        while not h.server.stop.wait(0.2):  # a byte every 0.2 s, well within read_timeout
            h.wfile.write(b"1\r\n \r\n" if chunked else b" ")

    raw_server.routes["/trickle"] = trickle
    url = raw_server.url("/trickle")
    started = time.monotonic()
    error = fetch_error(url)
    elapsed = time.monotonic() - started
    assert "deadline" in str(error)
    assert OPTIONS.deadline <= elapsed < OPTIONS.deadline + OPTIONS.read_timeout + 0.5


def test_connection_closed_mid_body(raw_server: RawServer) -> None:
    def hang_up(h: RawHandler) -> None:
        h.start(200, {"Content-Length": "1000", **RSS_TYPE})
        h.wfile.write(RSS[:40])
        h.close_connection = True

    raw_server.routes["/cut"] = hang_up
    error = fetch_error(raw_server.url("/cut"))
    assert "connection broken while reading the response" in str(error)
    assert "IncompleteRead" in str(error)  # the cause, named


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but never listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/feed"


def test_connection_refused(refused_url: str) -> None:
    started = time.monotonic()
    error = fetch_error(refused_url)
    assert time.monotonic() - started < OPTIONS.connect_timeout + 1.0
    assert "cannot connect" in str(error)
    assert isinstance(error.__cause__, requests.ConnectionError)
    assert "ConnectionError" in str(error)  # the cause is named in the message


# --- politeness: at most per_host requests to one host at once ------------------------


class InFlight:
    """A route that counts concurrent requests and holds each until released."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.total = 0
        self.release = threading.Event()

    def __call__(self, h: RawHandler) -> None:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.hold:
                time.sleep(self.hold)
            else:
                self.release.wait(3)
        finally:
            with self.lock:
                self.now -= 1
        h.start(200, {"Content-Length": str(len(RSS)), **RSS_TYPE})
        h.wfile.write(RSS)


def fetch_in_threads(urls: list[str], limiter: HostLimiter) -> list[Any]:
    def one(url: str) -> Any:
        with requests.Session() as session:
            return fetch(url, replace(OPTIONS, deadline=5.0), NOW, limiter=limiter, session=session)

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        futures = [pool.submit(one, url) for url in urls]
        return [future.result(timeout=10) for future in futures]


@pytest.mark.parametrize(("per_host", "peak"), [(2, 2), (6, 6)])
def test_host_limiter_caps_requests_in_flight(
    raw_server: RawServer, per_host: int, peak: int
) -> None:
    """per_host=6 is the control: it shows the server would see all six at once."""
    counter = InFlight(hold=0.3)
    raw_server.routes["/slow"] = counter
    results = fetch_in_threads([raw_server.url("/slow")] * 6, HostLimiter(per_host))
    assert [r.body for r in results] == [RSS] * 6
    assert counter.total == 6
    assert counter.peak == peak


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_host_limiter_does_not_block_other_hosts(raw_server: RawServer) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo("localhost", None)}
    except OSError:
        addresses = set()
    if not addresses or not all(a in ("127.0.0.1", "::1") for a in addresses):
        pytest.skip(f"localhost does not resolve to loopback only here: {addresses}")
    counter = InFlight(hold=0)
    raw_server.routes["/hold"] = counter
    raw_server.routes["/fast"] = lambda h: h.start(200, {"Content-Length": "0"})
    limiter = HostLimiter(2)
    port = raw_server.server_address[1]
    held = f"http://127.0.0.1:{port}/hold"
    with ThreadPoolExecutor(max_workers=3) as pool:
        try:
            futures = [pool.submit(get, held, limiter=limiter) for _ in range(3)]
            assert wait_until(lambda: counter.now == 2)
            # Both 127.0.0.1 slots are taken; localhost is another host, so it goes ahead.
            started = time.monotonic()
            other = get(f"http://localhost:{port}/fast", limiter=limiter)
            assert other.status == 200
            assert time.monotonic() - started < 1.0
            time.sleep(0.2)
            assert counter.total == 2  # the third 127.0.0.1 request is still waiting
        finally:
            counter.release.set()
        assert [f.result(timeout=5).status for f in futures] == [200] * 3
    assert counter.peak == 2


def test_host_limiter_keys_on_host_not_port_or_case() -> None:
    limiter = HostLimiter(1)
    entered = threading.Event()
    with limiter.slot("http://Example.COM:8080/a"):

        def other() -> None:
            with limiter.slot("https://example.com/b"):
                entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.2)
    assert entered.wait(2)
    thread.join(timeout=2)


# --- poll(): unchanged and changed bodies ---------------------------------------------


def test_poll_unchanged_body_is_not_parsed(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(RSS, headers=RSS_TYPE)
    digest = hashlib.sha256(RSS).hexdigest()
    outcome = poll(state_for(httpserver.url_for("/feed"), body_hash=digest), poll_options(), NOW)
    assert outcome.error is None
    assert outcome.parsed is None
    assert outcome.unchanged
    assert outcome.body_hash == digest
    assert outcome.fetch is not None and outcome.fetch.body == RSS
    assert outcome.next_fetch_at > NOW


def test_poll_changed_body_is_parsed(httpserver: Any) -> None:
    httpserver.expect_request("/feed").respond_with_data(RSS, headers=RSS_TYPE)
    url = httpserver.url_for("/feed")
    outcome = poll(state_for(url, body_hash="0" * 64), poll_options(), NOW)
    assert outcome.error is None
    assert not outcome.unchanged
    assert outcome.body_hash == hashlib.sha256(RSS).hexdigest()
    assert outcome.parsed is not None
    assert outcome.parsed.title == "Tiny"
    assert [(e.title, e.link) for e in outcome.parsed.entries] == [
        ("Only item", "https://example.com/only")
    ]
    assert outcome.parsed.entries[0].published == datetime(2026, 4, 20, 8, 0, tzinfo=UTC)


def test_poll_304_is_unchanged(httpserver: Any) -> None:
    httpserver.expect_request("/feed", headers={"If-None-Match": '"v1"'}).respond_with_data(
        b"", status=304
    )
    state = state_for(httpserver.url_for("/feed"), etag='"v1"', body_hash="abc")
    outcome = poll(state, poll_options(), NOW)
    assert outcome.error is None
    assert outcome.unchanged
    assert outcome.body_hash == "abc"


def test_poll_network_failure_is_an_error_not_an_exception(refused_url: str) -> None:
    outcome = poll(state_for(refused_url, error_count=2), poll_options(), NOW)
    assert outcome.error is not None
    assert outcome.error.type == "FetchError"
    assert outcome.error.status is None
    assert "cannot connect" in outcome.error.message
    assert outcome.fetch is None
    assert outcome.next_fetch_at > NOW


def test_poll_many_gives_up_on_a_server_trickling_its_headers(
    raw_server: RawServer, httpserver: Any
) -> None:
    def trickle_headers(h: RawHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        n = 0
        while not h.server.stop.wait(0.2):  # a header line every 0.2 s, never the end
            h.wfile.write(f"X-Slow-{n}: 1\r\n".encode())
            n += 1

    raw_server.routes["/headers"] = trickle_headers
    httpserver.expect_request("/ok").respond_with_data(RSS, headers=RSS_TYPE)
    options = poll_options()
    states = [state_for(raw_server.url("/headers")), state_for(httpserver.url_for("/ok"))]
    started = time.monotonic()
    outcomes = list(poll_many(states, options, NOW, workers=2, limiter=HostLimiter(2)))
    elapsed = time.monotonic() - started
    assert [o.spec.url for o in outcomes] == [httpserver.url_for("/ok"), raw_server.url("/headers")]
    assert outcomes[0].error is None and outcomes[0].parsed is not None
    error = outcomes[1].error
    assert error is not None and "no complete response within 7s; given up" in error.message
    assert watchdog_limit(options.fetch) <= elapsed < watchdog_limit(options.fetch) + 2


def test_a_bug_for_one_feed_is_that_feeds_error_not_the_rounds(
    httpserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aggregator.poll

    real_parse = aggregator.poll.parse

    def parse_that_breaks_on_one_feed(body: bytes, headers: Any, url: str) -> Any:
        if url.endswith("/bad"):
            raise RuntimeError("a bug in our parser")
        return real_parse(body, headers, url)

    monkeypatch.setattr(aggregator.poll, "parse", parse_that_breaks_on_one_feed)
    for path in ("/bad", "/good"):
        httpserver.expect_request(path).respond_with_data(RSS, headers=RSS_TYPE)
    states = [state_for(httpserver.url_for("/bad")), state_for(httpserver.url_for("/good"))]
    outcomes = {
        o.spec.url.rsplit("/", 1)[1]: o
        for o in poll_many(states, poll_options(), NOW, workers=2, limiter=HostLimiter(2))
    }
    assert outcomes["good"].error is None and outcomes["good"].parsed is not None
    bad = outcomes["bad"].error
    assert bad is not None and bad.type == "RuntimeError" and "a bug in our parser" in bad.message
    assert outcomes["bad"].next_fetch_at >= NOW + timedelta(seconds=30)  # backed off


def test_waiting_for_a_host_slot_costs_no_deadline(raw_server: RawServer) -> None:
    """Six feeds on one slow host, two at a time: the last pair waits ~2 s for its turn,
    longer than the deadline, and still gets the whole deadline for its own request."""
    counter = InFlight(hold=1.0)
    raw_server.routes["/slow"] = counter
    options = replace(OPTIONS, deadline=1.5, read_timeout=1.2)
    urls = [raw_server.url("/slow")] * 6
    with ThreadPoolExecutor(max_workers=6) as pool:
        limiter = HostLimiter(2)
        results = list(pool.map(lambda u: get(u, options, limiter=limiter), urls))
    assert [r.body for r in results] == [RSS] * 6
    assert counter.peak == 2


def test_a_host_whose_slots_stay_taken_is_an_error_not_a_hang(raw_server: RawServer) -> None:
    limiter = HostLimiter(1)
    url = raw_server.url("/never-reached")
    options = replace(OPTIONS, deadline=0.2, read_timeout=0.1)
    started = time.monotonic()
    with limiter.slot(url):  # held as if by a request stuck on a hostile server
        error = fetch_error(url, options, limiter=limiter)
    assert "still busy with 1 requests after 0.9s" in str(error)
    assert time.monotonic() - started < 2


def test_a_304_keeps_the_feeds_ttl(httpserver: Any) -> None:
    httpserver.expect_request("/ttl").respond_with_data(status=304)
    state = state_for(httpserver.url_for("/ttl"), etag='"v"', ttl=timedelta(hours=4))
    options = PollOptions(fetch=OPTIONS, policy=Policy(jitter=0))
    outcome = poll(state, options, NOW)
    assert outcome.unchanged and outcome.next_fetch_at == NOW + timedelta(hours=4)


def test_a_busy_feed_is_polled_before_its_entries_scroll_away(httpserver: Any) -> None:
    items = "".join(
        f"<item><title>Item {n}</title><link>https://example.com/{n}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(minutes=5 * n))}</pubDate></item>"
        for n in range(5)
    )  # five entries over 20 minutes
    body = f'<rss version="2.0"><channel><title>Busy</title>{items}</channel></rss>'.encode()
    httpserver.expect_request("/busy").respond_with_data(body, headers=RSS_TYPE)
    state = FeedState(spec=FeedSpec(url=httpserver.url_for("/busy"), name="Busy",
                                    interval=timedelta(hours=1)))  # fmt: skip
    options = PollOptions(fetch=OPTIONS, policy=Policy(jitter=0))
    outcome = poll(state, options, NOW)
    assert outcome.next_fetch_at == NOW + timedelta(minutes=10)
