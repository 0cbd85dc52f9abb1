"""GPU samples for the simulated fleet, driven by the simulated requests (pure).

Each GPU of each node is busy for the sum of the durations of the requests it
served, spread over the seconds they ran; with room for ``CONCURRENCY``
requests at once, that gives its utilization. Power, energy, temperature,
memory and clocks follow utilization, so GPU windows and request windows move
together the way they do on real hardware.
"""

from __future__ import annotations

import math
from collections import defaultdict

from fleetpulse.schemas import VERSION

CONCURRENCY = 8.0  # requests a GPU serves at once at 100%
IDLE_W, PEAK_W, LIMIT_W = 90.0, 690.0, 700.0
MEMORY_TOTAL = 85_520_809_984


class SimulatedGpus:
    def __init__(self, nodes: list[str], gpus_per_node: int):
        self._gpus = [(node, gpu) for node in nodes for gpu in range(gpus_per_node)]
        self._busy: dict[int, dict[tuple[str, int], float]] = defaultdict(lambda: defaultdict(float))
        self._energy = {key: 1.0e7 for key in self._gpus}
        self._next_second: int | None = None

    def add(self, events: list[dict]) -> list[dict]:
        """Account ``events`` (ordered by time); return samples for every second now complete."""
        for e in events:
            key = (e["host.name"], int(e.get("gpu.id") or 0))
            end = e["timestamp"]
            start = end - e["gen_ai.server.request.duration"]
            second = math.floor(start)
            while second < end:  # spread the busy time over the seconds it covers
                self._busy[second][key] += min(end, second + 1) - max(start, second)
                second += 1
        if not events:
            return []
        if self._next_second is None:
            self._next_second = math.floor(events[0]["timestamp"])
        return self._emit_until(math.floor(events[-1]["timestamp"]))

    def finish(self, last_timestamp: float) -> list[dict]:
        return self._emit_until(math.floor(last_timestamp) + 1)

    def _emit_until(self, second_exclusive: int) -> list[dict]:
        samples = []
        while self._next_second is not None and self._next_second < second_exclusive:
            busy = self._busy.pop(self._next_second, {})
            samples += [self._sample(node, gpu, self._next_second + 1.0, busy.get((node, gpu), 0.0))
                        for node, gpu in self._gpus]
            self._next_second += 1
        for old in [s for s in self._busy if self._next_second is not None and s < self._next_second]:
            del self._busy[old]  # requests that started before the first emitted second
        return samples

    def _sample(self, node: str, gpu: int, at: float, busy: float) -> dict:
        utilization = min(100.0, 100.0 * busy / CONCURRENCY)
        power = IDLE_W + (PEAK_W - IDLE_W) * utilization / 100.0
        self._energy[(node, gpu)] += power
        return {
            "type": "gpu", "version": VERSION, "timestamp": at, "host.name": node,
            "gpu.uuid": f"GPU-sim-{node}-{gpu}", "gpu.index": gpu, "gpu.name": "Simulated H100 80GB",
            "gpu.utilization": round(utilization, 2), "gpu.memory.utilization": round(utilization * 0.4, 2),
            "gpu.memory.used": int(MEMORY_TOTAL * (0.55 + 0.3 * utilization / 100.0)),
            "gpu.memory.total": MEMORY_TOTAL, "gpu.temperature": round(34.0 + 0.5 * utilization, 1),
            "gpu.power.usage": round(power, 1), "gpu.power.limit": LIMIT_W,
            "gpu.energy": round(self._energy[(node, gpu)], 3), "gpu.clock.sm": 1980 if power < 650 else 1755,
            "gpu.clock.memory": 2619, "gpu.throttle_reasons": 0 if power < 650 else 4, "gpu.ecc.volatile": 0,
            "gpu.pcie.tx": 1.0e8 * utilization / 100.0, "gpu.pcie.rx": 3.0e7 * utilization / 100.0, "gpu.xid": 0,
        }
