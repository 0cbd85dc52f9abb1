"""The GPU sampler without a broker: recorded readings -> valid v1 events,
null fields and their counter, the tick loop, and the CLI's error line."""

from __future__ import annotations

import sys
import threading

import pytest
from prometheus_client import generate_latest

from fleetpulse.cli import build_parser
from fleetpulse.errors import ConfigError
from fleetpulse.producers.gpu import sampler as sampler_module
from fleetpulse.producers.gpu.nvml import NO_DRIVER
from fleetpulse.producers.gpu.recorded import H100_REAL, H100X2, RecordedNvmlSource
from fleetpulse.producers.gpu.sampler import GpuSampler, main
from fleetpulse.schemas import validate_event


class Kept:
    """A sink that keeps what it is handed, like a broker that acks everything."""

    failed = dropped = 0

    def __init__(self):
        self.events: list[dict] = []

    @property
    def sent(self) -> int:
        return len(self.events)

    def record_batch(self, events: list[dict]) -> int:
        self.events.extend(events)
        return len(events)


class OneReading:
    def __init__(self, **fields):
        self.fields = fields

    def read(self) -> list[dict]:
        return [{"gpu.uuid": "GPU-x", "gpu.index": 0, **self.fields}]

    def close(self) -> None:
        pass


def test_every_recorded_sample_becomes_a_valid_event_with_the_recorded_values():
    recording = RecordedNvmlSource().ticks
    sink = Kept()
    sampler = GpuSampler(RecordedNvmlSource(), "node-a", sink)
    for tick in recording:
        events = sampler.sample()
        assert len(events) == len(tick) == 2
        assert len({e["timestamp"] for e in events}) == 1
        for event, reading in zip(events, tick):
            assert validate_event(event, "gpu") is event
            assert (event["type"], event["version"], event["host.name"]) == ("gpu", 1, "node-a")
            assert {name: event[name] for name in reading} == reading
    assert len(sink.events) == 60


def test_a_real_h100_recording_samples_into_valid_events_whose_units_agree():
    """Readings a real H100 gave PynvmlSource (converted there from NVML's mJ
    and mW): every one a valid event with no null, and the energy counter
    rising as the power readings integrated over the ticks, as they would not
    if either conversion were off."""
    sink = Kept()
    sampler = GpuSampler(RecordedNvmlSource(H100_REAL), "h100-host", sink)
    sampler.run(0, count=60)
    assert len(sink.events) == 60
    for event in sink.events:
        validate_event(event, "gpu")
    assert sampler.nulls == {}
    energy = [e["gpu.energy"] for e in sink.events]
    power = [e["gpu.power.usage"] for e in sink.events]
    integrated = sum((a + b) / 2 for a, b in zip(power, power[1:]))  # ticks are 1 s apart
    assert energy == sorted(energy)
    assert (energy[-1] - energy[0]) / integrated == pytest.approx(1, abs=0.02)
    busy = [e for e in sink.events if e["gpu.utilization"] >= 98]
    assert len(busy) >= 30 and all(e["gpu.throttle_reasons"] & 0x4 for e in busy)  # at the 700 W cap


def test_unsupported_fields_are_sent_as_null_and_counted():
    sampler = GpuSampler(RecordedNvmlSource(), "node-a", Kept())
    gpu1 = [e for _ in range(30) for e in sampler.sample() if e["gpu.index"] == 1]
    assert all("gpu.ecc.volatile" in e and e["gpu.ecc.volatile"] is None for e in gpu1)
    text = generate_latest(sampler.registry).decode()
    assert 'fleetpulse_gpu_null_fields_total{field="gpu.ecc.volatile"} 30.0' in text
    assert "fleetpulse_gpu_samples_total 60.0" in text
    assert "fleetpulse_gpu_sent_events_total 60.0" in text
    assert "fleetpulse_gpu_failed_events_total 0.0" in text
    assert text.count("fleetpulse_gpu_null_fields_total{") == 1  # GPU 0 reports everything


def test_a_value_the_schema_rejects_is_sent_as_null_and_counted():
    sampler = GpuSampler(OneReading(**{"gpu.temperature": 255.0, "gpu.utilization": 40}), "node-a", Kept())
    [event] = sampler.sample()
    assert event["gpu.temperature"] is None and event["gpu.utilization"] == 40
    assert 'fleetpulse_gpu_null_fields_total{field="gpu.temperature"} 1.0' in generate_latest(sampler.registry).decode()


def test_replay_starts_over_after_the_last_tick():
    source = RecordedNvmlSource()
    first = source.read()
    for _ in range(len(source.ticks) - 1):
        source.read()
    assert source.read() == first


@pytest.mark.parametrize("content", [b"", b"{}", b'{"ticks": []}', b'{"ticks": [[{"gpu.index": 0}]]}'])
def test_a_bad_recording_is_a_config_error(tmp_path, content):
    path = tmp_path / "rec.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="GPU recording"):
        RecordedNvmlSource(path)


def test_run_stops_after_count_ticks_or_when_told():
    sampler = GpuSampler(RecordedNvmlSource(), "node-a", Kept())
    sampler.run(0.001, count=5)
    assert (sampler.ticks, sampler.samples) == (5, 10)
    stop = threading.Event()
    stop.set()
    sampler.run(0.001, stop=stop)
    assert sampler.ticks == 5


def test_subcommand_arguments(monkeypatch):
    """The parser ``fleetpulse gpu-sampler`` (and ``python -m fleetpulse.producers.gpu``) really uses."""
    parser = build_parser()
    args = parser.parse_args(["gpu-sampler", "--interval", "0.5", "--count", "3", "--recorded", str(H100X2)])
    assert (args.interval, args.count, args.node, args.recorded) == (0.5, 3, None, str(H100X2))
    handed = []
    monkeypatch.setattr(sampler_module, "run_gpu_sampler", lambda *a: handed.append(a) or 0)
    assert args.run("settings", args) == 0
    [(settings, source, interval, count, node)] = handed
    assert (settings, type(source), interval, count, node) == ("settings", RecordedNvmlSource, 0.5, 3, None)
    for count in ("0", "-1", "x"):
        with pytest.raises(SystemExit):
            parser.parse_args(["gpu-sampler", "--count", count])


def test_cli_without_a_driver_prints_one_line_and_exits_1(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert main(["--count", "1"]) == 1
    err = capsys.readouterr().err
    assert err == f"fleetpulse: error: {NO_DRIVER} (the pynvml module is not installed)\n"
