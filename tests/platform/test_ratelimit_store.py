"""Atomic GCRA stores and the AtomicRateLimiter wired into a tiny Quart app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from electro.app import create_app
from electro.web.ratelimit import (
    AtomicRateLimiter,
    MemoryAtomicStore,
    RateLimited,
    RedisAtomicStore,
    make_store,
)

PER_MINUTE_3 = (60.0, 20.0)  # (period, inverse) of 3 per minute


def _unique(name: str) -> str:
    return f"test-{name}-{uuid.uuid4().hex}"


# --- memory store ---------------------------------------------------------------------------


async def test_memory_lets_exactly_three_of_twenty_through() -> None:
    store = MemoryAtomicStore()
    key = _unique("mem")
    verdicts = await asyncio.gather(*(store.acquire([(key, *PER_MINUTE_3)]) for _ in range(20)))
    results = [v.retry_after for v in verdicts]
    assert results[:3] == [None, None, None]
    assert all(r is not None for r in results[3:])
    assert results[3] == pytest.approx(20.0, abs=0.5)
    # Each allowed request reports its new TAT: 20, 40, 60 s ahead.
    assert [v.waits[0] for v in verdicts[:3]] == pytest.approx([20.0, 40.0, 60.0], abs=0.5)
    assert verdicts[3].waits == ()


async def test_memory_rejection_consumes_no_other_limit() -> None:
    store = MemoryAtomicStore()
    loose, strict = _unique("loose"), _unique("strict")
    both = [(loose, *PER_MINUTE_3), (strict, 60.0, 60.0)]  # 3/min and 1/min
    assert (await store.acquire(both)).waits == pytest.approx((20.0, 60.0), abs=0.5)
    retry = (await store.acquire(both)).retry_after
    assert retry == pytest.approx(60.0, abs=0.5)  # the largest wait of the rejecting limits
    # loose was consumed once only: two more fit, the third does not.
    assert (await store.acquire([(loose, *PER_MINUTE_3)])).retry_after is None
    assert (await store.acquire([(loose, *PER_MINUTE_3)])).retry_after is None
    assert (await store.acquire([(loose, *PER_MINUTE_3)])).retry_after is not None


async def test_memory_sweeps_expired_entries() -> None:
    store = MemoryAtomicStore(max_entries=5)
    for i in range(5):  # at the threshold: no sweep yet
        await store.acquire([(f"old-{i}", 0.01, 0.01)])
    assert len(store._tats) == 5
    await asyncio.sleep(0.05)
    await store.acquire([("fresh", 60.0, 60.0)])
    assert set(store._tats) == {"fresh"}


def test_make_store_picks_backend() -> None:
    assert isinstance(make_store(None), MemoryAtomicStore)
    assert isinstance(make_store(""), MemoryAtomicStore)
    assert isinstance(make_store("redis://127.0.0.1:6379/0"), RedisAtomicStore)


# --- redis store ----------------------------------------------------------------------------


@pytest.fixture
async def two_workers(redis_url: str) -> AsyncIterator[tuple[RedisAtomicStore, RedisAtomicStore]]:
    """Two stores, as two app workers sharing one Redis."""
    a, b = RedisAtomicStore(redis_url), RedisAtomicStore(redis_url)
    await a.before_serving()
    await b.before_serving()
    yield a, b
    await a.after_serving()
    await b.after_serving()


@pytest.mark.redis
async def test_redis_two_workers_let_exactly_three_through(
    two_workers: tuple[RedisAtomicStore, RedisAtomicStore],
) -> None:
    a, b = two_workers
    key = _unique("redis")
    try:
        verdicts = await asyncio.gather(
            *((a if i % 2 else b).acquire([(key, *PER_MINUTE_3)]) for i in range(20))
        )
        results = [v.retry_after for v in verdicts]
        assert sum(r is None for r in results) == 3
        waits = sorted(v.waits[0] for v in verdicts if v.retry_after is None)
        assert waits == pytest.approx([20.0, 40.0, 60.0], abs=0.5)  # the new TATs, server clock
        rejected = [r for r in results if r is not None]
        assert all(0 < r <= 20.0 for r in rejected)
        assert max(rejected) == pytest.approx(20.0, abs=0.5)
        # Idle keys expire: the TTL is tat - now, i.e. at most the period.
        pttl = await a.client.pttl(a.prefix + key)
        assert 0 < pttl <= 60_000
    finally:
        await a.client.delete(a.prefix + key)


@pytest.mark.redis
async def test_redis_rejection_consumes_no_other_limit(
    two_workers: tuple[RedisAtomicStore, RedisAtomicStore],
) -> None:
    a, b = two_workers
    loose, strict = _unique("loose"), _unique("strict")
    both = [(loose, *PER_MINUTE_3), (strict, 60.0, 60.0)]
    try:
        assert (await a.acquire(both)).retry_after is None
        assert (await b.acquire(both)).retry_after == pytest.approx(60.0, abs=0.5)
        assert (await a.acquire([(loose, *PER_MINUTE_3)])).retry_after is None
        assert (await b.acquire([(loose, *PER_MINUTE_3)])).retry_after is None
        assert (await a.acquire([(loose, *PER_MINUTE_3)])).retry_after is not None
    finally:
        await a.client.delete(a.prefix + loose, a.prefix + strict)


@pytest.mark.redis
async def test_redis_after_serving_closes_cleanly(redis_url: str) -> None:
    # pytest runs with -W error: the deprecated close() would fail this test.
    store = RedisAtomicStore(redis_url)
    await store.before_serving()
    assert (await store.acquire([])).retry_after is None
    await store.after_serving()
    await store.after_serving()  # idempotent
    with pytest.raises(RuntimeError):
        store.client  # noqa: B018


# --- the limiter in the app ------------------------------------------------------------------


def _random_ip() -> str:
    """An address no other test (nor an earlier run sharing Redis) has used."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


async def _check_app(overrides: dict[str, Any]) -> None:
    """The app factory's limiter and its 429 page, as a client would meet them."""
    app = create_app({**overrides, "default_rate_limit": "3/minute"})
    scope = {"client": (_random_ip(), 1234)}
    async with app.test_app() as test_app:
        client = test_app.test_client()
        statuses = []
        for i in range(5):
            # A forged, changing X-Forwarded-For / Remote-Addr must not buy a fresh budget.
            headers = {"X-Forwarded-For": f"198.51.100.{i}", "Remote-Addr": f"192.0.2.{i}"}
            response = await client.get("/", headers=headers, scope_base=scope)
            statuses.append(response.status_code)
            if i == 0:
                assert response.headers["RateLimit-Limit"] == "3"
                assert response.headers["RateLimit-Remaining"] == "2"
                assert response.headers["RateLimit-Reset"] == "20"
            if i == 2:
                assert response.headers["RateLimit-Remaining"] == "0"
            if i == 3:
                assert response.headers.getlist("Retry-After") in (["19"], ["20"])
                assert "Too many requests" in await response.get_data(as_text=True)
        assert statuses == [200, 200, 200, 429, 429]
        # A different connection address has its own budget.
        other = await client.get("/", scope_base={"client": (_random_ip(), 1)})
        assert other.status_code == 200


async def test_app_memory_store_limits_by_connection_address(
    settings_overrides: dict[str, Any],
) -> None:
    await _check_app(settings_overrides)


@pytest.mark.redis
async def test_app_redis_store_limits_by_connection_address(
    settings_overrides: dict[str, Any], redis_url: str
) -> None:
    await _check_app({**settings_overrides, "redis_url": redis_url})


def test_limiter_requires_atomic_store() -> None:
    from quart_rate_limiter.store import MemoryStore

    with pytest.raises(TypeError):
        AtomicRateLimiter(store=MemoryStore())  # type: ignore[arg-type]


def test_rate_limited_adds_no_retry_after_itself() -> None:
    exc = RateLimited(7)
    assert exc.code == 429
    assert exc.retry_after == 7
    assert all(name.lower() != "retry-after" for name, _ in exc.get_headers())
