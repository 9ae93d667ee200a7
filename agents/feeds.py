"""Fetching feeds: http(s) with timeouts, retries, conditional GET and a size limit; local files.

URLs are fetched under the app's URL policy (agents/urls.py): public addresses only unless
`allow_private`. A local path is read as given: only the operator names one (environment,
command line); the Deals tab and the chat take http(s) URLs only.

Every failure becomes a `Fetched` with `ok=False` and a message a user can read; nothing here
raises for a bad feed, so one broken feed never stops a scan.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import httpx
from tenacity import (
    RetryError,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from agents.urls import fetching_client

log = logging.getLogger("dealscout.feeds")

USER_AGENT = "DealScout/0.1 (deal feed scanner; +https://github.com/dealscout)"
MAX_FEED_BYTES = 5 * 1024 * 1024


class FeedValidators(Protocol):
    """Where ETag / Last-Modified headers of earlier fetches are remembered (e.g. the memory)."""

    def feed_validators(self, url: str) -> dict[str, str]: ...


@dataclass
class Fetched:
    source: str
    ok: bool
    content: bytes = b""
    unchanged: bool = False  # 304 Not Modified: nothing new since the last scan
    message: str = ""
    validators: dict[str, str] = field(default_factory=dict)  # {"etag": ..., "last-modified": ...}


class _TooLarge(Exception):
    pass


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable(err: BaseException) -> bool:
    if isinstance(err, httpx.UnsupportedProtocol):
        return False
    return isinstance(err, _RetryableStatus | httpx.TransportError)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def local_path(source: str) -> Path | None:
    """The file a source names (`file://...` or a plain path), or None for an http(s) URL."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("", "http", "https") or len(parsed.scheme) == 1:  # "C:\\feeds\\x.xml"
        return None if parsed.scheme.startswith("http") else Path(source)
    raise ValueError(f"unsupported feed address {source!r}: use http(s)://, file:// or a path")


class FeedFetcher:
    """Fetches one feed at a time; reuse one instance so connections are pooled."""

    def __init__(
        self,
        *,
        timeout_s: float = 15.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        max_bytes: int = MAX_FEED_BYTES,
        validators: FeedValidators | None = None,
        client: httpx.Client | None = None,
        allow_private: bool = False,
    ):
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.max_bytes = max_bytes
        self.validators = validators
        self.client = client or fetching_client(
            timeout_s=timeout_s, allow_private=allow_private,
            headers={"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/atom+xml, "
                     "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> FeedFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, source: str) -> Fetched:
        if not source.strip():
            return Fetched(source, ok=False, message="empty feed address")
        try:
            path = local_path(source)
            if path is not None:
                return self._read_file(source, path)
            return self._fetch_url(source)
        except (ValueError, httpx.InvalidURL) as err:
            return Fetched(source, ok=False, message=str(err))
        except _TooLarge:
            return Fetched(source, ok=False, message=f"skipped: larger than {_size(self.max_bytes)}, "
                           "download cut off")
        except RetryError as err:  # every attempt failed with a retryable error
            last = err.last_attempt.exception()
            return Fetched(source, ok=False, message=f"failed after {self.attempts} tries: "
                           f"{self._describe(last)}")
        except httpx.HTTPError as err:
            return Fetched(source, ok=False, message=f"failed: {self._describe(err)}")

    def _describe(self, err: BaseException | None) -> str:
        if isinstance(err, _RetryableStatus):
            return f"server answered HTTP {err.response.status_code} {err.response.reason_phrase}"
        if isinstance(err, httpx.TimeoutException):
            return f"timed out (limit {self.timeout_s:g} s)"
        if isinstance(err, httpx.ConnectError):
            return "could not connect to the server"
        if isinstance(err, httpx.RemoteProtocolError):  # a reset, or a body cut short
            return f"the server broke off the connection ({str(err).rstrip('.')})"
        if isinstance(err, httpx.HTTPError):
            return f"{type(err).__name__}: {err}"
        return str(err)

    def _read_file(self, source: str, path: Path) -> Fetched:
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                return Fetched(source, ok=False, message=f"skipped: file is {_size(size)}, "
                               f"over the {_size(self.max_bytes)} limit")
            return Fetched(source, ok=True, content=path.read_bytes())
        except FileNotFoundError:
            return Fetched(source, ok=False, message=f"no such file: {path}")
        except OSError as err:
            return Fetched(source, ok=False, message=f"cannot read {path}: {err.strerror or err}")

    def _fetch_url(self, url: str) -> Fetched:
        headers: dict[str, str] = {}
        known = self.validators.feed_validators(url) if self.validators else {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last-modified"):
            headers["If-Modified-Since"] = known["last-modified"]

        @retry(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=30 * self.backoff_s),
            before_sleep=lambda state: log.info("retrying %s after %s", url,
                                                self._describe(state.outcome.exception())),
        )
        def attempt() -> Fetched:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return Fetched(url, ok=True, unchanged=True, message="unchanged since last scan",
                                   validators=known)
                if response.status_code in (408, 425, 429) or response.status_code >= 500:
                    raise _RetryableStatus(response)
                if response.status_code >= 400:
                    return Fetched(url, ok=False, message=f"failed: server answered HTTP "
                                   f"{response.status_code} {response.reason_phrase}")
                content = self._read_limited(response)
                validators = {k: response.headers[k] for k in ("etag", "last-modified")
                              if k in response.headers}
                return Fetched(url, ok=True, content=content, validators=validators)

        return attempt()

    def _read_limited(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge
        # The timeout bounds each read; this bounds a server that drips bytes forever.
        deadline = time.monotonic() + 4 * self.timeout_s
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > self.max_bytes:
                raise _TooLarge
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("download too slow", request=response.request)
            chunks.append(chunk)
        return b"".join(chunks)
