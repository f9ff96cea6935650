"""Run leases: how API replicas sharing one database split the runs between them.

The replica executing a run holds its lease (``replica``, ``lease_until`` in the run's row) and renews it every
``lease_renew_s``. A run whose lease expired belongs to a replica that died: any replica may claim it, with one
conditional UPDATE, so exactly one does. Cancelling a run held elsewhere sets ``cancel_requested``; the holder sees
it on its next renewal. Hand-written because it is a few statements on our own table, not worth a job queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ponder.api._store import RunStore

log = logging.getLogger(__name__)

# what a holder is told on renewal: True = the lease was lost (stop quietly), False = cancellation was requested
Stop = Callable[[bool], None]


class Leases:
    def __init__(self, store: RunStore, replica: str, *, lease_s: float = 15.0, renew_s: float = 5.0) -> None:
        self.store = store
        self.replica = replica
        self.lease_s = lease_s
        self.renew_s = renew_s
        self._held: dict[str, Stop] = {}
        # runs that ended here but whose final status may not be written yet: renewed until it is, so nobody
        # takes over a run that is done (the event writer batches, and may be slow under load)
        self._ending: set[str] = set()
        self._sweeps: list[Callable[[], Awaitable[object]]] = []
        self._task: asyncio.Task[None] | None = None

    def until(self) -> float:
        """When a lease taken now ends."""
        return time.time() + self.lease_s

    def hold(self, run_id: str, stop: Stop) -> None:
        """Renew ``run_id``'s lease while it runs here; ``stop`` is called when it must end."""
        self._held[run_id] = stop

    def drop(self, run_id: str) -> None:
        if self._held.pop(run_id, None) is not None:
            self._ending.add(run_id)

    async def claim(self, run_id: str, *, statuses: Sequence[str], mine_ok: bool = False) -> bool:
        return await self.store.claim(
            run_id, self.replica, time.time(), self.lease_s, statuses=statuses, mine_ok=mine_ok
        )

    def on_sweep(self, sweep: Callable[[], Awaitable[object]]) -> None:
        """Call ``sweep`` on every tick, to recover runs whose holder died."""
        self._sweeps.append(sweep)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ponder-leases")

    def held(self) -> list[str]:
        return [*self._held, *self._ending]

    async def close(self, release: Sequence[str] = ()) -> None:
        """Stop renewing, and give back the leases of ``release`` (runs this replica stopped executing because it
        shuts down), so that another replica need not wait for them to expire."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.store.release(release, self.replica)
        except Exception:  # noqa: BLE001 - shutting down: the leases then expire on their own
            log.warning("could not release %d run leases; they expire in %.0f s", len(release), self.lease_s)

    async def tick(self) -> None:
        """Renew, stop what was cancelled elsewhere or lost, recover what others left."""
        ending = list(self._ending)
        ids = list(self._held)
        held, leased, cancel = await self.store.renew([*ids, *ending], self.replica, self.until())
        self._ending.difference_update(r for r in ending if r not in leased)  # written (or taken over)
        for run_id in ids:
            stop = self._held.get(run_id)
            if stop is None:
                continue  # ended while we were renewing
            if run_id in cancel:
                stop(False)
            elif run_id not in held:
                log.warning("lost the lease on run %s to another replica; stopping it here", run_id)
                self._held.pop(run_id, None)
                stop(True)
        for sweep in self._sweeps:
            await sweep()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self.tick()
            except Exception:  # a database hiccup: try again next tick, the lease has slack
                log.exception("renewing run leases failed")
