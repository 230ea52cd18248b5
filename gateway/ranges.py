"""Byte ranges of generated representations.

Readers that open a URL like a file (polars through object_store, fsspec's HTTP
file system) ask ``HEAD`` for the size (answered by the GET, see gateway.head) and
then fetch byte ranges, the Parquet footer first. The representation is generated,
so a range is served by encoding it whole and slicing; an observations
representation so encoded is kept (``Gateway.ranged_bodies``, bounded in bytes)
for the reader's next ranges.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_206_PARTIAL_CONTENT,
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
)

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiableError(HTTPException):
    """416: the range lies outside the representation."""

    status_code = HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range one ``Range`` header asks for, or None for the whole.

    Several ranges, or a unit other than bytes, are ignored (the whole is sent,
    which RFC 9110 allows). Raises RangeNotSatisfiableError for a range that
    starts past the end.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RangeNotSatisfiableError:
    return RangeNotSatisfiableError(
        f"the representation has {size} bytes", headers={"Content-Range": f"bytes */{size}"}
    )


def if_range_holds(if_range: str | None, etag: str | None) -> bool:
    """Whether a ``Range`` may be served under ``If-Range`` (RFC 9110 13.1.5).

    Only an ETag equal to the current one by strong comparison holds: a weak ETag
    never does, and neither does a date (these representations are generated per
    request and have no modification time to compare with).
    """
    if if_range is None:
        return True
    tag = if_range.strip()
    return etag is not None and not etag.startswith("W/") and tag == etag


def ranged(
    request: Request[Any, Any, Any], body: bytes, media_type: str, headers: dict[str, str]
) -> Response[bytes]:
    """``body`` whole (200) or the part the ``Range`` header asks for (206); whole when
    an ``If-Range`` does not hold for ``headers``' ETag."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    wanted = None
    if if_range_holds(request.headers.get("if-range"), headers.get("ETag")):
        wanted = parse_range(request.headers.get("range"), len(body))
    if wanted is None:
        return Response(body, media_type=media_type, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
    return Response(
        body[start : end + 1],
        status_code=HTTP_206_PARTIAL_CONTENT,
        media_type=media_type,
        headers=headers,
    )
