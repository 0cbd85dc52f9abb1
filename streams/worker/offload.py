"""Blocking calls off the event loop, on threads that never keep the worker alive."""

from __future__ import annotations

import asyncio
import threading

#: A query still running this long after its time limit is stuck (in a read the
#: engine cannot interrupt, say): it is left to its thread and the slot freed.
ABANDON_AFTER_S = 30


async def in_daemon_thread(fn, *args, timeout: float):
    """``fn(*args)`` on a daemon thread of its own, so that a call stuck inside
    the engine neither holds the event loop nor keeps the process from exiting
    (executor threads are joined at exit); asyncio.TimeoutError after ``timeout``."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def settle(result, error) -> None:
        if not done.done():
            done.set_exception(error) if error is not None else done.set_result(result)

    def run() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # noqa: BLE001 -- handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop closed while the call ran: nobody waits for it

    threading.Thread(target=run, name="fleetpulse-query", daemon=True).start()
    return await asyncio.wait_for(asyncio.shield(done), timeout)
