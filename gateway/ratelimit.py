"""Per-client token buckets, in the memory of one process.

Each identity (an API key's name, or a client address without authentication)
has a bucket of ``burst`` tokens refilled at ``rate`` per second; a request takes
one. The buckets live in this process only: N replicas (or N uvicorn workers)
together admit up to N times the configured rate. A limit that must hold across
replicas belongs in the load balancer in front of them.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from litestar.exceptions import TooManyRequestsException

#: Identities remembered at once; the least recently seen is forgotten first
#: (it comes back with a full bucket), so memory stays bounded under address scans.
MAX_IDENTITIES = 10_000


class RateLimitedError(TooManyRequestsException):
    """429 with ``Retry-After``: the client's budget is used up."""

    def __init__(self, identity: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"rate limit exceeded for {identity}; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after = seconds


class TokenBuckets:
    """Token buckets by identity. ``rate`` 0 disables limiting."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_identities: int = MAX_IDENTITIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_identities = max_identities
        self.clock = clock
        # identity -> (tokens, time of last refill)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, identity: str) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, since = self._buckets.pop(identity, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[identity] = (tokens, now)
        while len(self._buckets) > self.max_identities:
            self._buckets.popitem(last=False)
        return wait

    def charge(self, identity: str) -> None:
        """Take a token or raise RateLimitedError (429) with the seconds to wait."""
        wait = self.take(identity)
        if wait > 0:
            raise RateLimitedError(identity, wait)
