"""Requests to the stage URL, behind an interface tests can fake."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 30.0
"""API Gateway answers within its 29-second integration limit."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes


class HttpTransport(Protocol):
    def request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> HttpResponse:
        """Send one request; header names go out exactly as given."""
        ...


class HttpsTransport:
    """``http.client``, which sends header names as given (``urllib`` capitalises them, and
    the case of a header is one thing verify checks)."""

    def request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> HttpResponse:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the stage URL must be https://host/..., got {url!r}")
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=TIMEOUT_SECONDS
        )
        try:
            connection.putrequest(method, parts.path + (f"?{parts.query}" if parts.query else ""))
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return HttpResponse(
                status=response.status,
                headers={name.lower(): value for name, value in response.getheaders()},
                body=response.read(),
            )
        finally:
            connection.close()
