"""Product views (B6) one worker keeps before writing them together.

Measured with a copy of bench/bench_recommend.py's serving run (100,000 products, 1 worker, 8
connections, a shared 2-core machine): writing each view in its request took the recommendations
fragment from 127 to 81 req/s and its p99 from 0.27 to 1.4 s (every write waits for SQLite's one
write lock and commits). So views are remembered here and written together, one INSERT of many
rows, by the request that finds the oldest of them ``view_flush_seconds`` old (or ``VIEW_BATCH``
of them), in a transaction of its own that takes the write lock first (a read followed by a
write in a savepoint fails at once on a busy SQLite); a database still busy after its timeout
leaves them kept for the next time. A worker writes what it kept when it stops; one that
crashes loses at most those seconds of views, which only ever tune the picks.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.services import recommendations
from electro.services.recommendations import View

VIEW_BATCH = 1000
MAX_REMEMBERED_VIEWS = 100_000


@dataclass
class ViewBuffer:
    """One per app (so one per worker process)."""

    settings: Settings
    pending: set[View] = field(default_factory=set)
    pending_since: datetime | None = None
    written: set[View] = field(default_factory=set)  # stored on written_day
    written_day: date | None = None

    def viewed(self, product_id: int, client: str) -> bool:
        """Count ``client``'s view of the product; True when the kept views are due to be
        written (``flush``)."""
        now = clock.now()
        view: View = (product_id, client, now.date())
        if view in self.written:
            return False
        if not self.pending:
            self.pending_since = now
        self.pending.add(view)
        age = (now - (self.pending_since or now)).total_seconds()
        return len(self.pending) >= VIEW_BATCH or age >= self.settings.view_flush_seconds

    async def flush(self, writing: Callable[[], AbstractAsyncContextManager[AsyncSession]]
                    ) -> None:
        """Write the kept views in a transaction ``writing()`` opens (one that takes the write
        lock first)."""
        views, self.pending, self.pending_since = self.pending, set(), None
        if not views:
            return
        today = clock.now().date()
        if self.written_day != today or len(self.written) >= MAX_REMEMBERED_VIEWS:
            self.written, self.written_day = set(), today
        try:
            async with writing() as db:
                stored = await recommendations.record_views(db, views)
        except OperationalError:  # still busy after busy_timeout: keep them for next time
            self.pending |= views
            self.pending_since = clock.now()
            return
        if stored:
            self.written.update(views)
