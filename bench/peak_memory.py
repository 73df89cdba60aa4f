"""Peak memory of parsing one feed file, measured in a fresh process.

    python bench/peak_memory.py FILE {aggregator,feedparser}

Prints JSON: the resident set size just before the parse and its peak during it, so the
difference is what parsing FILE cost at its peak, on top of the interpreter, the imports
and the body itself.

Linux: the peak is VmHWM from /proc/self/status, reset just before the parse through
/proc/self/clear_refs. Not ru_maxrss: Linux carries it over from the parent across fork
and exec, so a child started by a big parent reports the parent's peak.
"""

from __future__ import annotations

import gc
import io
import json
import resource
import sys
import time
from pathlib import Path

import feedparser

from aggregator.parse import parse

TINY = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>a</title>'
    b'<link>https://example.com/a</link><description>&lt;p&gt;<![CDATA[<a href="/x">x</a>]]>'
    b"</description></item></channel></rss>"
)


def status_kib(key: str) -> int | None:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in KiB; None off Linux."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_kib() -> int:
    return status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(body: bytes, mode: str) -> int:
    if mode == "aggregator":
        return len(
            parse(body, {"content-type": "application/rss+xml"}, "https://example.com/").entries
        )
    return len(feedparser.parse(io.BytesIO(body)).entries)


def main() -> None:
    path, mode = Path(sys.argv[1]), sys.argv[2]
    run(TINY, mode)  # load every lazily imported module before the first reading
    body = path.read_bytes()
    gc.collect()
    exact = reset_peak() and status_kib("VmHWM") is not None
    before = status_kib("VmRSS") if exact else peak_kib()
    started = time.perf_counter()
    entries = run(body, mode)
    elapsed = time.perf_counter() - started
    after = peak_kib()
    print(
        json.dumps(
            {
                "mode": mode,
                "body_bytes": len(body),
                "entries": entries,
                "rss_before_kib": before,
                "peak_kib": after,
                "peak_reset": exact,
                "elapsed_s": elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
