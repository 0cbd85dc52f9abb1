"""A deterministic NVML source: readings replayed from a JSON recording.

CI has no GPU, and the simulator needs the same readings on every run, so
both read a recording instead of the driver. The file holds
``{"description": ..., "ticks": [[reading, ...], ...]}``: one list of readings
(the shape ``NvmlSource.read`` returns) per tick.
"""

from __future__ import annotations

import copy
from pathlib import Path

import orjson

from fleetpulse.errors import ConfigError

#: Two made-up but realistic H100 80GB GPUs under inference load, 30 ticks, no
#: MIG; ECC is off on GPU 1, so its ``gpu.ecc.volatile`` is null throughout.
H100X2 = Path(__file__).parent / "recordings" / "h100x2.json"

#: One real H100 80GB HBM3, 60 ticks through ``PynvmlSource``: idle, a matmul
#: loop at the 700 W cap, idle again (see the file's description).
H100_REAL = Path(__file__).parent / "recordings" / "h100_real.json"


class RecordedNvmlSource:
    """Replays a recording tick by tick and starts over at its end.

    Starting over resets cumulative values (``gpu.energy``) as a driver reload
    would, which consumers of "since driver load" counters handle anyway.
    """

    def __init__(self, path: str | Path = H100X2):
        self.ticks = _load(Path(path))
        self._next = 0

    def read(self) -> list[dict]:
        tick = self.ticks[self._next % len(self.ticks)]
        self._next += 1
        return copy.deepcopy(tick)

    def close(self) -> None:
        """Nothing to release: the recording was read whole at the start."""


def _load(path: Path) -> list[list[dict]]:
    try:
        ticks = orjson.loads(path.read_bytes())["ticks"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"GPU recording {path}: not readable as a recording ({exc})") from exc
    good = isinstance(ticks, list) and ticks and all(
        isinstance(tick, list) and all(isinstance(r, dict) and "gpu.uuid" in r and "gpu.index" in r for r in tick)
        for tick in ticks)
    if not good:
        raise ConfigError(f"GPU recording {path}: 'ticks' must be a non-empty list of lists of readings "
                          "with gpu.uuid and gpu.index")
    return ticks
