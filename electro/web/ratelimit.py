"""Atomic GCRA rate limiting on top of quart-rate-limiter.

The library checks every limit (store.get) and then updates them (store.get + store.set) in
separate awaits, so concurrent requests (or several workers sharing Redis) all read the same
TAT and all pass. Here one `acquire` call checks and updates every limit of a request at once:
in-process without awaiting, or in Redis with a single Lua script. Its answer also carries the
new TATs, from which the RateLimit-* headers are written: the library read the store once more
after every request for them.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from math import ceil
from typing import TYPE_CHECKING, Any, NamedTuple

from quart import Quart, Response, g, request
from quart_rate_limiter import KeyCallable, RateLimit, RateLimiter
from werkzeug.exceptions import HTTPException, TooManyRequests

from electro.web.bearer import current_bearer

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# (key, period_seconds, inverse_seconds = period / count)
Limit = tuple[str, float, float]

__all__ = [
    "AtomicRateLimiter",
    "AtomicStore",
    "Limit",
    "MemoryAtomicStore",
    "RateLimited",
    "RedisAtomicStore",
    "Verdict",
    "client_key",
    "make_store",
]


class RateLimited(TooManyRequests):
    """429 carrying `retry_after` (whole seconds).

    Unlike the library's RateLimitExceeded it emits no Retry-After header of its own: the app's
    error handler writes exactly one from `retry_after`, so the header is never sent twice.
    """

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__()
        self.retry_after: int = retry_after_seconds

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        # Skip werkzeug's _RetryAfter.get_headers, which would add Retry-After.
        return HTTPException.get_headers(self, *args, **kwargs)


class Verdict(NamedTuple):
    retry_after: float | None  # None: allowed; else seconds until the request would be
    waits: tuple[float, ...] = ()  # allowed: seconds from now to each limit's new TAT


class AtomicStore:
    """A store that can check-and-update a whole set of GCRA limits atomically. (Not the
    library's store ABC: its get/set are what AtomicRateLimiter no longer calls.)"""

    @abstractmethod
    async def acquire(self, limits: Sequence[Limit]) -> Verdict:
        """Consume one request from every limit, or none of them."""

    @abstractmethod
    async def before_serving(self) -> None: ...

    @abstractmethod
    async def after_serving(self) -> None: ...


class MemoryAtomicStore(AtomicStore):
    """Per-process store; atomic because `acquire` never awaits.

    TATs are kept on the monotonic clock so wall-clock jumps do not open or freeze limits.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._tats: dict[str, float] = {}
        self._max_entries = max_entries
        self._sweep_at = max_entries

    async def before_serving(self) -> None:
        pass

    async def after_serving(self) -> None:
        pass

    async def acquire(self, limits: Sequence[Limit]) -> Verdict:
        now = time.monotonic()
        retry_after: float | None = None
        for key, period, inverse in limits:
            tat = max(self._tats.get(key, now), now)
            allow_at = tat - (period - inverse)
            if allow_at > now:  # same as: tat - now > period - inverse
                retry_after = max(retry_after or 0.0, allow_at - now)
        if retry_after is not None:
            return Verdict(retry_after)  # a rejection consumes nothing
        waits = []
        for key, _period, inverse in limits:
            # Re-read so a key listed twice is consumed twice, as the library does.
            self._tats[key] = max(self._tats.get(key, now), now) + inverse
            waits.append(self._tats[key] - now)
        self._maybe_sweep(now)
        return Verdict(None, tuple(waits))

    def _maybe_sweep(self, now: float) -> None:
        # Entries whose TAT has passed are equivalent to absent ones; drop them so memory is
        # bounded by the number of recently active clients. The next sweep waits until the dict
        # doubles, keeping the cost amortised O(1) when most entries are live.
        if len(self._tats) <= self._sweep_at:
            return
        self._tats = {k: t for k, t in self._tats.items() if t > now}
        self._sweep_at = max(self._max_entries, 2 * len(self._tats))


# KEYS: one per limit. ARGV: period_ms, inverse_ms per limit (integers).
# Returns {-1, wait_ms per limit} when allowed (wait: new TAT - now), else {retry-after ms}.
# Uses the server clock (TIME) so every worker shares one clock; TATs are integer ms since the
# epoch; PX makes idle keys vanish exactly when they stop mattering (TAT reached).
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retry = -1
for i, key in ipairs(KEYS) do
  local period = tonumber(ARGV[2 * i - 1])
  local inverse = tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key)) or now, now)
  local allow_at = tat - (period - inverse)
  if allow_at > now and allow_at - now > retry then retry = allow_at - now end
end
if retry >= 0 then return {retry} end
local waits = {-1}
for i, key in ipairs(KEYS) do
  local inverse = tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key)) or now, now) + inverse
  redis.call('SET', key, tat, 'PX', tat - now)
  waits[i + 1] = tat - now
end
return waits
"""


class RedisAtomicStore(AtomicStore):
    """Store shared by all workers, atomic through one Lua script per request."""

    prefix = "electro:rl:"

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: aioredis.Redis | None = None
        self._script: Any = None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisAtomicStore used before before_serving()")
        return self._client

    async def before_serving(self) -> None:
        # Imported only when configured: redis is an optional extra ("electro[redis]").
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(self._url)
        await self._client.ping()  # a configured Redis that does not answer stops the start
        # EVALSHA with automatic re-load on NOSCRIPT (e.g. after a server restart).
        self._script = self._client.register_script(_ACQUIRE_LUA)

    async def after_serving(self) -> None:
        if self._client is not None:
            await self._client.aclose()  # close() is deprecated and warns
            self._client = None

    async def acquire(self, limits: Sequence[Limit]) -> Verdict:
        if not limits:
            return Verdict(None)
        keys = [self.prefix + key for key, _, _ in limits]
        args: list[int] = []
        for _key, period, inverse in limits:
            # Floor the inverse: with integer ms, rounding it up could admit count - 1 requests.
            args += [round(period * 1000), max(1, int(inverse * 1000))]
        retry_ms, *waits_ms = (int(n) for n in await self._script(
            keys=keys, args=args, client=self.client))
        if retry_ms >= 0:
            return Verdict(retry_ms / 1000)
        return Verdict(None, tuple(ms / 1000 for ms in waits_ms))


def make_store(redis_url: str | None) -> AtomicStore:
    """Redis when configured (shared by all workers), else per-process memory."""
    return RedisAtomicStore(redis_url) if redis_url else MemoryAtomicStore()


async def client_key() -> str:
    """A working API token (limited as itself, wherever it is used from), else the
    connection's address, independent of any account. A token that does not work counts
    against the address, so made-up tokens cannot open fresh limits.

    Never reads X-Forwarded-For: behind trusted proxies hypercorn's ProxyFixMiddleware rewrites
    the ASGI client address, which is what remote_addr reports.
    """
    bearer = await current_bearer()
    if bearer is not None:
        return f"token:{bearer.token.id}"
    return request.remote_addr or "unknown"


_COUNTED = "electro_rate_limit"  # on g: (the shortest-period limit, seconds to its new TAT)


class AtomicRateLimiter(RateLimiter):
    """RateLimiter whose check and update are one atomic store call."""

    store: AtomicStore  # type: ignore[assignment]

    def __init__(
        self,
        app: Quart | None = None,
        key_function: KeyCallable = client_key,
        *,
        store: AtomicStore,
        default_limits: list[RateLimit] | None = None,
    ) -> None:
        if not isinstance(store, AtomicStore):
            raise TypeError("AtomicRateLimiter needs an AtomicStore")
        super().__init__(app, key_function=key_function, store=store,  # type: ignore[arg-type]
                         default_limits=default_limits or [])

    async def _raise_on_rejection(self, endpoint: str, rate_limits: list[RateLimit]) -> None:
        if not rate_limits:
            return
        limits = [
            (await self._create_key(endpoint, limit), limit.period.total_seconds(), limit.inverse)
            for limit in rate_limits
        ]
        verdict = await self.store.acquire(limits)
        if verdict.retry_after is not None:
            raise RateLimited(max(1, ceil(verdict.retry_after)))
        # The headers describe the shortest-period limit, as the library's do.
        shortest = min(range(len(rate_limits)), key=lambda i: limits[i][1])
        setattr(g, _COUNTED, (rate_limits[shortest], verdict.waits[shortest]))

    async def _update_limits(self, endpoint: str, rate_limits: list[RateLimit]) -> None:
        pass  # acquire() already updated the TATs

    async def _after_request(self, response: Response) -> Response:
        """RateLimit-* headers from the TAT acquire() returned: no second read of the store."""
        counted: tuple[RateLimit, float] | None = g.pop(_COUNTED, None)
        if counted is not None:
            limit, separation = counted
            remaining = int((limit.period.total_seconds() - separation) / limit.inverse)
            response.headers["RateLimit-Limit"] = str(limit.count)
            response.headers["RateLimit-Remaining"] = str(remaining)
            response.headers["RateLimit-Reset"] = str(ceil(separation))
        return response
