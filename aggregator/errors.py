"""The exception hierarchy. Imports nothing of ours."""

from __future__ import annotations

from datetime import datetime


class AggregatorError(Exception):
    """Base class; str(e) reads "message: cause" so one line tells the user what to fix."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        cause = self.__cause__
        if cause is None:
            return self.message
        return f"{self.message}: {type(cause).__name__}: {cause}"


class ConfigError(AggregatorError):
    def __init__(self, message: str, path: str | None = None, key: str | None = None) -> None:
        where = ", ".join(p for p in (path, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.key = key


class FeedError(AggregatorError):
    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class FetchError(FeedError):
    """Network failure, timeout, size cap, bad redirect, or an HTTP error status."""

    def __init__(
        self,
        url: str,
        message: str,
        status: int | None = None,
        retry_after: datetime | None = None,
    ) -> None:
        super().__init__(url, message)
        self.status = status
        self.retry_after = retry_after


class ParseError(FeedError):
    """Not a feed, an unknown format, or every entry bad."""


class StoreError(AggregatorError):
    """The database cannot be written or read: locked, disk full, read-only, corrupt."""


class ExportError(AggregatorError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class AggregatorWarning(AggregatorError, UserWarning):
    """Something was skipped or overridden, and the rest went on."""
