"""PynvmlSource and the sampler against the real NVIDIA driver for a few ticks.

Prints what was read and which fields came back null, so a run on a new GPU
model or driver shows at a glance what it supports. Skips without a driver.
"""

from __future__ import annotations

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.producers.gpu.nvml import PynvmlSource
from fleetpulse.producers.gpu.sampler import GpuSampler
from fleetpulse.schemas import validate_event
from tests.unit.producers.gpu.test_sampler import Kept

TICKS = 5


@pytest.fixture
def source():
    try:
        source = PynvmlSource()
    except ConfigError as exc:
        pytest.skip(f"needs an NVIDIA GPU and driver: {exc}")
    yield source
    source.close()


def test_real_gpus_sample_into_valid_events(source, capsys):
    sink = Kept()
    sampler = GpuSampler(source, "gpu-test", sink)
    sampler.run(0.2, count=TICKS)

    assert sink.events and len(sink.events) % TICKS == 0
    for event in sink.events:
        validate_event(event, "gpu")
    last = {e["gpu.uuid"]: e for e in sink.events}
    for uuid, event in last.items():
        if uuid.startswith("GPU-"):  # every physical GPU reports these
            assert event["gpu.name"] and event["gpu.memory.total"] > 0
        energy = [e["gpu.energy"] for e in sink.events if e["gpu.uuid"] == uuid and e.get("gpu.energy") is not None]
        assert energy == sorted(energy)
    with capsys.disabled():
        print(f"\n{len(last)} devices, {sampler.summary()}")
        for uuid, event in last.items():
            values = {k: v for k, v in event.items() if k.startswith("gpu.") and v is not None}
            nulls = sorted(k for k, v in event.items() if v is None)
            print(f"{uuid}: {values}\n  null: {', '.join(nulls) or 'none'}")
