"""A first-come, first-served allowance shared by worker threads and the event loop:
how many photos are decoded at once (one unit each), how many bytes of uploads are
held in memory at once (their sizes).

:class:`Limiter` grants ``amount`` of a fixed ``capacity`` in arrival order (a large
request at the head is not overtaken by small ones behind it, so it cannot starve);
a request larger than the whole capacity is granted the whole capacity, alone.
Threads wait with :meth:`Limiter.acquire`; coroutines with :meth:`Limiter.acquire_async`,
which never blocks the loop and gives back a grant that raced with its cancellation.
Both give up after ``timeout`` seconds (``False``); the caller then answers "busy"
instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    amount: int
    wake: threading.Event | None = None  # a thread's
    future: asyncio.Future[None] | None = None  # a coroutine's
    loop: asyncio.AbstractEventLoop | None = None
    granted: bool = field(default=False)


class Limiter:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._free = capacity
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.capacity - self._free

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def _clamp(self, amount: int) -> int:
        if amount < 1:
            raise ValueError("amount must be at least 1")
        return min(amount, self.capacity)

    def _take_now(self, amount: int) -> bool:
        """Under the lock: take ``amount`` if nobody waits before us and it is free."""
        if not self._queue and self._free >= amount:
            self._free -= amount
            return True
        return False

    def _grant_waiting(self) -> None:
        """Under the lock: hand what is free to the waiters at the head, in order."""
        while self._queue and self._free >= self._queue[0].amount:
            w = self._queue.popleft()
            self._free -= w.amount
            w.granted = True
            if w.wake is not None:
                w.wake.set()
            elif w.future is not None and w.loop is not None:
                w.loop.call_soon_threadsafe(_resolve, w.future)

    def _give_up(self, w: _Waiter) -> bool:
        """Under the lock: a waiter stops waiting; ``True`` if it was granted meanwhile
        (it then holds its amount)."""
        if w.granted:
            return True
        self._queue.remove(w)
        self._grant_waiting()  # a large request leaving the head may unblock smaller ones
        return False

    def acquire(self, amount: int = 1, timeout: float | None = None) -> bool:
        """Block this thread until ``amount`` is granted (``True``) or ``timeout`` passes."""
        amount = self._clamp(amount)
        with self._lock:
            if self._take_now(amount):
                return True
            w = _Waiter(amount, wake=threading.Event())
            self._queue.append(w)
        assert w.wake is not None
        w.wake.wait(timeout)
        with self._lock:
            return self._give_up(w)

    async def acquire_async(self, amount: int = 1, timeout: float | None = None) -> bool:
        """Wait on the event loop until ``amount`` is granted (``True``) or ``timeout``
        passes (``False``). Cancelled, it holds nothing."""
        amount = self._clamp(amount)
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._take_now(amount):
                return True
            w = _Waiter(amount, future=loop.create_future(), loop=loop)
            self._queue.append(w)
        assert w.future is not None
        try:
            await asyncio.wait_for(asyncio.shield(w.future), timeout)
        except TimeoutError:
            pass
        except BaseException:  # cancelled: a grant that came meanwhile goes back
            with self._lock:
                if self._give_up(w):
                    self._release_locked(amount)
            raise
        with self._lock:
            return self._give_up(w)

    def _release_locked(self, amount: int) -> None:
        self._free += amount
        if self._free > self.capacity:
            self._free = self.capacity
            raise RuntimeError("Limiter released more than was acquired")
        self._grant_waiting()

    def release(self, amount: int = 1) -> None:
        amount = self._clamp(amount)
        with self._lock:
            self._release_locked(amount)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
