"""A loopback feed origin for the poll-round benchmark, run as a child process.

    python bench/origin.py --feeds 200 --items 30

Serves /feed/<i>.xml (generated RSS 2.0, each with an ETag) on 127.0.0.1 only, prints
the port on stdout once every body is ready, and stops when its stdin closes: the parent
that started it stops it, and it never outlives the parent.

It runs in its own process so that serving does not compete with the aggregator's
threads for the parent's GIL. Control endpoints (for the benchmark, not feeds):
GET /stats (request counts as JSON) and GET /etag/on, /etag/off (off: ignore
If-None-Match and send no ETag, like an origin without conditional GET).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import rss_feed  # noqa: E402


class Origin(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up shutdown
    request_queue_size = 128  # the default backlog of 5 drops SYNs from 8+ workers

    def __init__(self, bodies: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies = {
            path: (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')
            for path, body in bodies.items()
        }
        self.etags = True
        self.lock = threading.Lock()
        self.counts = {"200": 0, "304": 0, "404": 0}

    def count(self, status: int) -> None:
        with self.lock:
            self.counts[str(status)] = self.counts.get(str(status), 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real origins and requests.Session use
    timeout = 30  # an idle keep-alive connection is dropped after this
    server: Origin

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        origin = self.server
        if self.path == "/stats":
            with origin.lock:
                stats = json.dumps(origin.counts).encode()
            self._send(200, stats, {"Content-Type": "application/json"})
            return
        if self.path in ("/etag/on", "/etag/off"):
            origin.etags = self.path == "/etag/on"
            self._send(204)
            return
        found = origin.bodies.get(self.path)
        if found is None:
            origin.count(404)
            self._send(404, b"not found", {"Content-Type": "text/plain"})
            return
        body, etag = found
        headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
        if origin.etags:
            headers["ETag"] = etag
            if self.headers.get("If-None-Match") == etag:
                origin.count(304)
                self._send(304, b"", headers)
                return
        origin.count(200)
        self._send(200, body, headers)


def feed_path(index: int) -> str:
    return f"/feed/{index}.xml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--content-size", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    bodies = {
        feed_path(i): rss_feed(
            args.seed + i, args.items, args.content_size, host=f"site{i % 50}.example"
        )
        for i in range(args.feeds)
    }
    origin = Origin(bodies)
    thread = threading.Thread(target=origin.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    size = sum(len(body) for body, _ in origin.bodies.values())
    print(json.dumps({"port": origin.server_address[1], "bytes": size}), flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        origin.shutdown()
        origin.server_close()
        thread.join(timeout=5)


if __name__ == "__main__":
    main()
