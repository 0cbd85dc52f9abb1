"""Results an evaluator has decided but not yet delivered.

Evaluating a window moves state forward (alert and drift state machines), so
it must happen once; delivering its results (ClickHouse rows, alert events)
can fail while a service is down. The outbox keeps what was decided and
retries delivery on the next tick, in order, before anything new is evaluated.
"""

from __future__ import annotations

from typing import Callable


class Outbox:
    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[], None], ...]] = []

    def add(self, *steps: Callable[[], None]) -> None:
        """Steps of one delivery, done in order; a step that succeeded is not redone."""
        self._pending.append(steps)

    def flush(self) -> None:
        """Deliver what is pending. A step that raises stays pending, with the
        steps after it, and the error goes to the caller (a retryable outage)."""
        while self._pending:
            steps = self._pending[0]
            steps[0]()
            self._pending[0] = steps[1:]
            if not self._pending[0]:
                self._pending.pop(0)

    def __bool__(self) -> bool:
        return bool(self._pending)
