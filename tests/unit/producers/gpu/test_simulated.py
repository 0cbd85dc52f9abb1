"""Simulated GPU samples follow the simulated load, and are valid v1 events."""

from fleetpulse.producers.gpu.simulated import SimulatedGpus
from fleetpulse.schemas import validate_event

T0 = 1_800_000_000.0


def request(ts, duration, node="n1", gpu="0"):
    return {"timestamp": ts, "host.name": node, "gpu.id": gpu, "gen_ai.server.request.duration": duration}


def test_busy_gpus_report_higher_utilization_and_power():
    gpus = SimulatedGpus(["n1"], 2)
    samples = gpus.add([request(T0 + 0.5 + i * 0.01, 2.0) for i in range(40)] + [request(T0 + 3.2, 0.1, gpu="1")])
    samples += gpus.finish(T0 + 3.2)
    by = {(s["gpu.index"], s["timestamp"]): s for s in samples}
    for s in samples:
        validate_event(s, "gpu")
    assert by[(0, T0 + 1)]["gpu.utilization"] > by[(1, T0 + 1)]["gpu.utilization"] == 0
    assert by[(0, T0 + 1)]["gpu.power.usage"] > by[(1, T0 + 1)]["gpu.power.usage"]
    assert len({s["timestamp"] for s in samples}) == len(samples) // 2  # every GPU, every second
    energies = [s["gpu.energy"] for s in sorted(samples, key=lambda s: s["timestamp"]) if s["gpu.index"] == 0]
    assert energies == sorted(energies)  # a counter
