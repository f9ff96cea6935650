"""Per-key limits: requests per time window (the `limits` library's moving window, in memory or a shared store)
and runs queued or running at once. Both answer :class:`~ponder.errors.RateLimited` (429 with Retry-After)."""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from ponder.errors import ConfigError, RateLimited


class KeyLimits:
    def __init__(self, rate: str, storage: str = "memory://") -> None:
        try:
            self._rates = parse_many(rate) if rate.strip() else []
        except ValueError as exc:
            raise ConfigError(
                f"PONDER_API__RATE_LIMIT {rate!r} is not a rate",
                hint="write it like '120/minute' or '10/second;500/hour'",
            ) from exc
        # the async flavour of the storage: "memory://" -> "async+memory://" (the `limits` naming)
        uri = storage if storage.startswith("async+") else "async+" + storage
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri)) if self._rates else None

    @property
    def enabled(self) -> bool:
        return self._limiter is not None

    async def hit(self, owner: str) -> None:
        """Count one request of ``owner``; raise RateLimited when a window is full (the request is not counted)."""
        if self._limiter is None:
            return
        for rate in self._rates:
            if not await self._limiter.hit(rate, "key", owner):
                stats = await self._limiter.get_window_stats(rate, "key", owner)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(f"this API key sent more than {rate} requests", retry_after_s=wait)
