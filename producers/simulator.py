"""A deterministic fleet simulator: realistic request events and their exact truth.

Generation is pure: ``generate(config)`` is a function of the config alone
(seed included), so a test, a benchmark and a demo see the same traffic, and
``Truth`` is the exact per-window answer the pipeline must reproduce. Numbers
are drawn with numpy per chunk; the only Python loop builds the event dicts.
Sending is separate, in ``run_simulation``, through the ``Recorder`` SDK.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import orjson

from fleetpulse.errors import ConfigError
from fleetpulse.producers.envelope import hex_ids
from fleetpulse.producers.gpu.simulated import SimulatedGpus
from fleetpulse.producers.recorder import Recorder
from fleetpulse.producers.sim_quality import QualityShares, QualityTruth, draw, fields
from fleetpulse.producers.tenant_traffic import TenantDraw, TenantSpike, TenantTruth
from fleetpulse.schemas import VERSION
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.grid import window_starts


@dataclasses.dataclass(frozen=True)
class Drift:
    """A shift injected from ``after_s`` seconds of event time into the run on.

    Numeric features move their log-normal median by ``size`` standard
    deviations of their own log scale (0.5 = "a 0.5 sigma mean shift").
    Categorical ones move a share ``size`` of the traffic: ``finish_reason``
    from "stop" to "length", ``operation`` from chat to text_completion.
    """

    feature: str
    size: float
    after_s: float

    @classmethod
    def parse(cls, text: str) -> Drift:
        """``input_tokens=0.5@300``: feature=size@seconds-after-start."""
        try:
            feature, rest = text.split("=", 1)
            size, after = rest.split("@", 1)
            drift = cls(feature.strip(), float(size), float(after))
        except ValueError as exc:
            raise ConfigError(f"--drift {text!r}: expected FEATURE=SIZE@SECONDS, e.g. input_tokens=0.5@300") from exc
        if drift.feature not in DRIFT_SIGMA and drift.feature not in ("finish_reason", "operation"):
            raise ConfigError(f"--drift {text!r}: can shift {', '.join([*DRIFT_SIGMA, 'finish_reason', 'operation'])}")
        return drift


#: Log-scale standard deviation of each numeric feature the simulator can shift.
DRIFT_SIGMA = {"input_tokens": 0.9, "output_tokens": 1.0, "ttft": 0.35, "tpot": 0.2, "queue_time": 1.2}


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Exactly one of ``duration_s`` (event time) and ``count``."""

    nodes: int = 4
    models: int = 3
    rate: float = 2000.0  # events per second of event time, fleet-wide
    duration_s: float | None = None
    count: int | None = None
    seed: int = 0
    start: float | None = None  # epoch seconds of the first event; None: now (fast: so the run ends now)
    error_rate: float = 0.01
    burst_every_s: float = 60.0  # 0 disables bursts
    burst_len_s: float = 10.0
    burst_error_rate: float = 0.3
    window_seconds: int = 10
    single_events: bool = False
    pace: str = "realtime"  # or "fast"
    drifts: tuple[Drift, ...] = ()
    gpu_samples: bool = False  # also send NVML-like samples of each node's 8 GPUs, following the load
    quality: QualityShares | None = None  # output quality signals on successful requests (producers/sim_quality.py)
    tenants: int = 0  # 0: no fleetpulse.tenant; else Zipf over this many tenants (producers/tenant_traffic.py)
    tenant_zipf: float = 1.1
    tenant_spikes: tuple[TenantSpike, ...] = ()

    def __post_init__(self):
        if (self.duration_s is None) == (self.count is None):
            raise ConfigError("simulate: give exactly one of a duration (--duration) and a count (--count)")
        if (self.count is not None and self.count <= 0) or (self.duration_s is not None and self.duration_s <= 0):
            raise ConfigError("simulate: --count and --duration must be positive")
        if self.nodes < 1 or self.models < 1 or self.rate <= 0 or self.window_seconds < 1:
            raise ConfigError("simulate: nodes, models, rate and window_seconds must be positive")
        if self.pace not in ("realtime", "fast"):
            raise ConfigError(f"simulate: pace must be realtime or fast, got {self.pace!r}")
        if not (0 <= self.error_rate <= 1 and 0 <= self.burst_error_rate <= 1):
            raise ConfigError("simulate: error rates are probabilities in [0, 1]")
        if self.burst_every_s and not 0 < self.burst_len_s <= self.burst_every_s:
            raise ConfigError("simulate: burst_len_s must be in (0, burst_every_s]")

    @property
    def total(self) -> int:
        return self.count if self.count is not None else round(self.rate * self.duration_s)

    @property
    def chunk_size(self) -> int:
        """~0.1 s of event time per chunk, so realtime pacing is smooth."""
        return max(1, min(4096, math.ceil(self.rate * 0.1)))


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    """Lognormal medians (seconds, tokens) of one served model."""

    name: str
    weight: float  # share of traffic
    ttft: float  # fixed part of time to first token
    prefill_per_token: float  # TTFT grows with the prompt
    tpot: float
    input_tokens: float
    output_tokens: float
    max_output: int


PROFILES = (
    ModelProfile("llama-3.1-8b-instruct", 0.5, 0.04, 0.00004, 0.009, 500, 90, 2048),
    ModelProfile("llama-3.1-70b-instruct", 0.3, 0.15, 0.0002, 0.035, 700, 140, 4096),
    ModelProfile("mixtral-8x7b-instruct", 0.2, 0.08, 0.0001, 0.018, 600, 120, 4096),
    ModelProfile("qwen2.5-32b-instruct", 0.15, 0.1, 0.00015, 0.025, 800, 160, 4096),
    ModelProfile("mistral-7b-instruct", 0.25, 0.035, 0.00004, 0.008, 400, 80, 2048),
)
ERROR_TYPES = ("timeout", "rate_limited", "oom", "internal")
_BASE_ERRORS = np.array([0.3, 0.4, 0.1, 0.2])
_BURST_ERRORS = np.array([0.25, 0.05, 0.4, 0.3])  # a sick node: OOMs and crashes
_TIMEOUT_S = 60.0
_MAX_S = 3600.0


def profiles(models: int) -> list[ModelProfile]:
    """The first ``models`` profiles; past the table, scaled copies named ``model-NN``."""
    out = list(PROFILES[:models])
    for i in range(len(out), models):
        base, scale = PROFILES[i % len(PROFILES)], 1 + (i // len(PROFILES)) * 0.5
        out.append(dataclasses.replace(base, name=f"model-{i:02d}", weight=base.weight / 2,
                                       ttft=base.ttft * scale, tpot=base.tpot * scale))
    return out


def generate(config: SimulationConfig) -> Iterator[list[dict]]:
    """Chunks of valid v1 request events, in event-time order; see ``SimulationConfig``."""
    start = time.time() if config.start is None else config.start
    rng = np.random.default_rng(config.seed)
    table = _Table(profiles(config.models), config.nodes)
    tenants = TenantDraw(config.tenants, config.tenant_zipf, config.seed, config.tenant_spikes,
                         config.window_seconds) if config.tenants else None
    for first in range(0, config.total, config.chunk_size):
        n = min(config.chunk_size, config.total - first)
        chunk = _chunk(rng, config, table, start, first, n)
        if tenants is not None:
            tenants.assign(chunk, start)
        yield chunk


class _Table:
    """Per-model parameters as arrays, indexed by the drawn model codes."""

    def __init__(self, models: list[ModelProfile], nodes: int):
        self.names = [m.name for m in models]
        self.nodes = [f"node-{i:02d}" for i in range(nodes)]
        weights = np.array([m.weight for m in models])
        self.p = weights / weights.sum()
        for field in ("ttft", "prefill_per_token", "tpot", "input_tokens", "output_tokens", "max_output"):
            setattr(self, field, np.array([getattr(m, field) for m in models], dtype=np.float64))


def _chunk(rng: np.random.Generator, c: SimulationConfig, t: _Table, start: float, first: int, n: int) -> list[dict]:
    # Slot i of width 1/rate, jitter inside the slot: strictly increasing, within the run.
    ts = start + (np.arange(first, first + n) + rng.uniform(0.0, 0.9, n)) / c.rate
    node = rng.integers(0, c.nodes, n)
    model = rng.choice(len(t.names), n, p=t.p)
    shift = _shifts(c, ts - start)
    inputs = np.clip(np.rint(rng.lognormal(np.log(t.input_tokens[model]) + shift("input_tokens"), 0.9)), 1, 128_000)
    max_out = t.max_output[model]
    outputs = np.clip(np.rint(rng.lognormal(np.log(t.output_tokens[model]) + shift("output_tokens"), 1.0)), 1,
                      max_out)
    ttft = t.ttft[model] * rng.lognormal(shift("ttft"), 0.35, n) + t.prefill_per_token[model] * inputs
    tpot = t.tpot[model] * rng.lognormal(shift("tpot"), 0.2, n)
    queue = rng.lognormal(np.log(0.005) + shift("queue_time"), 1.2, n)

    burst = _in_burst(ts - start, node, c)
    failed = rng.random(n) < np.where(burst, c.burst_error_rate, c.error_rate)
    kind = np.where(burst, rng.choice(4, n, p=_BURST_ERRORS), rng.choice(4, n, p=_BASE_ERRORS))
    # Failed requests: rate-limited ones never start, the others stop part-way.
    outputs = np.where(failed, np.where(kind == 1, 0, np.floor(outputs * rng.random(n))), outputs)
    ttft = np.where(outputs > 0, ttft, np.nan)
    duration = queue + np.where(outputs > 0, ttft + tpot * np.maximum(outputs - 1, 0), 0.001)
    duration = np.where(failed & (kind == 0), _TIMEOUT_S + queue, duration)
    filtered = ~failed & (outputs < max_out) & (rng.random(n) < 0.003)
    finish = np.where(failed, 0, np.where(outputs >= max_out, 2, np.where(filtered, 3, 1)))
    finish = np.where((finish == 1) & (rng.random(n) < shift("finish_reason")), 2, finish)
    chat = (rng.random(n) < 0.8) & ~(rng.random(n) < shift("operation"))
    gpu = rng.integers(0, GPUS_PER_NODE, n)
    request_ids, trace_ids = hex_ids(n, rng.bytes(32 * n))
    drawn = None
    if c.quality is not None:
        drawn, finish = draw(c.seed, first, c.quality, failed, finish, inputs)
    events = _events(ts, node, model, inputs, outputs, np.minimum(duration, _MAX_S), ttft, tpot, queue,
                     np.where(failed, kind, -1), finish, chat, gpu, request_ids, trace_ids, t)
    if drawn is not None:
        for event, extra in zip(events, fields(drawn)):
            event.update(extra)
    return events


def _shifts(c: SimulationConfig, rel: np.ndarray):
    """feature -> per-event shift: log-scale offset (numeric) or share moved (categorical)."""
    def shift(feature: str) -> np.ndarray:
        total = np.zeros(len(rel))
        for d in c.drifts:
            if d.feature == feature:
                total += np.where(rel >= d.after_s, d.size * DRIFT_SIGMA.get(feature, 1.0), 0.0)
        return total
    return shift


def _in_burst(rel: np.ndarray, node: np.ndarray, c: SimulationConfig) -> np.ndarray:
    """The last ``burst_len_s`` of every ``burst_every_s`` period, on one node per period, in turn."""
    if not c.burst_every_s:
        return np.zeros(len(rel), dtype=bool)
    period = np.floor(rel / c.burst_every_s)
    in_window = rel - period * c.burst_every_s >= c.burst_every_s - c.burst_len_s
    return in_window & (node == period.astype(np.int64) % c.nodes)


_FINISH = (None, "stop", "length", "content_filter")
GPUS_PER_NODE = 8
_OPERATION = ("text_completion", "chat")


def _events(ts, node, model, inputs, outputs, duration, ttft, tpot, queue, error, finish, chat, gpu,
            request_ids, trace_ids, t: _Table) -> list[dict]:
    rnd = lambda a: np.round(a, 6).tolist()  # microseconds: plenty, and shorter JSON  # noqa: E731
    gpus = [str(i) for i in range(GPUS_PER_NODE)]
    events = []
    columns = zip(ts.tolist(), node.tolist(), model.tolist(), inputs.astype(np.int64).tolist(),
                  outputs.astype(np.int64).tolist(), rnd(duration), rnd(ttft), rnd(tpot), rnd(queue),
                  error.tolist(), finish.tolist(), chat.tolist(), gpu.tolist(), request_ids, trace_ids)
    for ts_, node_, model_, in_, out_, dur_, ttft_, tpot_, queue_, err_, fin_, chat_, gpu_, rid, tid in columns:
        event = {
            "type": "request", "version": VERSION, "timestamp": ts_, "request.id": rid, "trace_id": tid,
            "gen_ai.request.model": t.names[model_], "host.name": t.nodes[node_], "gpu.id": gpus[gpu_],
            "gen_ai.operation.name": _OPERATION[chat_], "gen_ai.server.request.duration": dur_,
            "fleetpulse.queue_time": queue_, "gen_ai.usage.input_tokens": in_, "gen_ai.usage.output_tokens": out_,
        }
        if ttft_ == ttft_:  # not NaN: the request produced tokens
            event["gen_ai.server.time_to_first_token"] = ttft_
            if out_ > 1:
                event["gen_ai.server.time_per_output_token"] = tpot_
        if err_ >= 0:
            event["error.type"] = ERROR_TYPES[err_]
        else:
            event["gen_ai.response.finish_reasons"] = [_FINISH[fin_]]
        events.append(event)
    return events


class Truth:
    """Exact per-(window_start, model, node) totals of the events added, windowed
    exactly like the stream workers (``streams.windows.grid.window_starts``)."""

    def __init__(self, window_seconds: int):
        self.window_seconds = window_seconds
        self._rows: dict[tuple[int, str, str], list[int]] = {}
        self.quality = QualityTruth()  # the output quality signals, by the same keys

    def add(self, events: Iterable[dict]) -> None:
        events = list(events)
        stamps = np.fromiter((e["timestamp"] for e in events), dtype=np.float64, count=len(events))
        for window, e in zip(window_starts(stamps, self.window_seconds).tolist(), events):
            key = (window, e["gen_ai.request.model"], e["host.name"])
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = [0, 0, 0, 0]
            row[0] += 1
            row[1] += e.get("error.type") is not None
            row[2] += e["gen_ai.usage.input_tokens"]
            row[3] += e["gen_ai.usage.output_tokens"]
            self.quality.add(key, e)

    @property
    def requests(self) -> int:
        return sum(row[0] for row in self._rows.values())

    def rows(self) -> list[dict]:
        """One dict per (window_start, model, node), sorted."""
        return [{"window_start": w, "model": m, "node": n, "requests": r, "errors": e,
                 "input_tokens": i, "output_tokens": o}
                for (w, m, n), (r, e, i, o) in sorted(self._rows.items())]

    def write_jsonl(self, path: str | Path) -> None:
        Path(path).write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in self.rows()))


@dataclasses.dataclass
class SimulationResult:
    sent: int  # events the broker acknowledged; equals truth.requests
    truth: Truth
    tenant_truth: TenantTruth | None
    elapsed_s: float
    interrupted: bool = False  # stopped by Ctrl-C before the end


def run_simulation(settings: Settings, config: SimulationConfig, *, truth_path: str | Path | None = None,
                   progress: bool = True) -> SimulationResult:
    """Send ``generate(config)`` to the requests topic through a ``Recorder``.

    ``pace="realtime"`` keeps event time in step with the wall clock (and the
    first event at now, unless ``start`` is set); ``"fast"`` sends flat out.
    The recorder is fed with ``block=True`` so it never drops: the truth counts
    exactly what was handed over, and ``close`` raises if any of it was not
    delivered (then no truth file is written: it would be wrong). Ctrl-C stops
    between chunks; a second Ctrl-C interrupts at once.
    """
    if config.start is None:
        # Fast runs end at "now" instead of running into the future, so every
        # window they fill is already in the past when the run finishes.
        lead = config.total / config.rate if config.pace == "fast" else 0.0
        config = dataclasses.replace(config, start=time.time() - lead)
    if truth_path is not None:
        Path(truth_path).touch()  # an unwritable path fails now, not after the whole run
    truth = Truth(config.window_seconds)
    tenant_truth = TenantTruth(config.window_seconds) if config.tenants else None
    report = _Progress(progress)
    gpus = SimulatedGpus(_Table(profiles(config.models), config.nodes).nodes, GPUS_PER_NODE) \
        if config.gpu_samples else None
    with _StopOnSigint() as stop, Recorder.from_settings(settings, single_events=config.single_events) as recorder, \
            Recorder(settings.bootstrap, settings.topic("gpu")) as gpu_recorder:
        last = None
        for chunk in generate(config):
            if config.pace == "realtime":
                stop.wait(chunk[-1]["timestamp"] - config.start - report.elapsed())
            if stop.is_set():
                break
            recorder.record_batch(chunk, block=True)
            truth.add(chunk)
            if tenant_truth is not None:
                tenant_truth.add(chunk)
            last = chunk[-1]["timestamp"]
            if gpus:
                gpu_recorder.record_batch(gpus.add(chunk), block=True)
        if gpus and last is not None:
            gpu_recorder.record_batch(gpus.finish(last), block=True)
            report.tick(truth.requests, recorder.sent)
    report.done(truth.requests, recorder.sent, stop.is_set())
    if truth_path is not None:
        truth.write_jsonl(truth_path)
        if tenant_truth is not None:  # beside it: truth.jsonl -> truth.tenants.jsonl
            tenant_truth.write_jsonl(Path(truth_path).with_suffix(".tenants.jsonl"))
    return SimulationResult(recorder.sent, truth, tenant_truth, report.elapsed(), stop.is_set())


class _Progress:
    """A line on stderr every ~2 s, and a summary at the end."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = self.last = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def tick(self, handed: int, acked: int) -> None:
        if self.enabled and time.monotonic() - self.last >= 2.0:
            self.last = time.monotonic()
            self._line("", handed, acked)

    def done(self, handed: int, acked: int, interrupted: bool) -> None:
        if self.enabled:
            self._line("interrupted, " if interrupted else "done, ", handed, acked)

    def _line(self, what: str, handed: int, acked: int) -> None:
        elapsed = self.elapsed()
        print(f"simulate: {what}{handed:,} events sent ({acked:,} acked), {handed / max(elapsed, 1e-9):,.0f} ev/s, "
              f"{elapsed:.1f}s elapsed", file=sys.stderr, flush=True)


class _StopOnSigint(threading.Event):
    """Turns the first Ctrl-C into a flag checked between chunks, so a chunk is
    never half-sent or half-counted; the second Ctrl-C raises as usual."""

    def __enter__(self) -> _StopOnSigint:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum, frame) -> None:
        if self.is_set():
            raise KeyboardInterrupt
        self.set()
