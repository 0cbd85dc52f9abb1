"""GPU windows on real chDB, against an exact computation on the same samples:
the base window, 1 minute and 1 hour tables stay exact through replayed
samples, late samples, a counter reset, a gap, and a worker restart after an
INSERT that a crash cut short."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import migrate
from fleetpulse.settings import load_settings
from fleetpulse.streams.alerting.evaluator import AlertEvaluator
from fleetpulse.streams.gpu import windows as gpu_windows
from fleetpulse.streams.gpu.samples import COLUMNS
from fleetpulse.streams.gpu.windows import COUNTER_LOOKBACK_S, GpuWindowWriter
from tests.clock import RECENT_HOUR

pytestmark = pytest.mark.integration

T0 = int(RECENT_HOUR)
SPAN_S = 2 * 3600 + 1200
GAP = (3000, 3100)  # GPU a sends nothing here: the energy across the gap is not attributed
RESET_AT = 5000  # GPU a's energy counter restarts from 0 (a driver reload)
LATENESS = 30


@pytest.fixture(scope="module")
def ch(chdb_path):
    client = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="gpu_windows_test",
                                      allowed_lateness_seconds=LATENESS))
    migrate(client, log=lambda _: None)
    yield client
    client.close()


def _samples() -> list[list]:
    rng = random.Random(11)
    rows = []
    energy_a, ecc_a = 1e6, 3
    for t in range(SPAN_S):
        if not GAP[0] <= t < GAP[1]:
            energy_a = (energy_a if t != RESET_AT else 0.0) + rng.uniform(200, 700)
            ecc_a += rng.random() < 0.01
            # Now and then an NVML call fails and the field is null: the counter
            # went on meanwhile, and the next reading's increase spans the gap.
            energy, ecc = (None if rng.random() < 0.015 else energy_a), (None if rng.random() < 0.01 else ecc_a)
            row = _row(t + 0.25, "node-1", "GPU-a", 0, rng.uniform(0, 100), energy, ecc,
                       rng.choice([0, 0, 0, 4, 64]), 0 if t < 4321 else 79, rng)
            if rng.random() < 0.01:
                row[5] = None  # utilization
            rows.append(row)
        if t % 2 == 0:  # GPU b samples every 2 s and has no ECC counter (null)
            rows.append(_row(t, "node-2", "GPU-b", 3, rng.uniform(0, 100), 5e5 + 300.0 * t, None, 0, None, rng))  # no XID events: null
    return rows


def _row(t, node, uuid, index, utilization, energy, ecc, throttle, xid, rng):
    memory_total = 80 * 2**30
    return [datetime.fromtimestamp(T0 + t, tz=timezone.utc), node, uuid, index, "NVIDIA H100 80GB HBM3",
            round(utilization, 1), rng.uniform(0, 60), rng.randrange(memory_total // 4, memory_total), memory_total,
            rng.uniform(30, 80), rng.uniform(70, 700), 700.0, energy, rng.choice([1410.0, 1980.0]), 2619.0,
            throttle, ecc, rng.uniform(0, 1e5), rng.uniform(0, 1e5), xid]


def _exact(rows: list[list], seconds: int, end: int) -> dict[tuple, dict]:
    """Per (window, node, GPU): the statistics the tables hold, from first principles."""
    by_gpu = defaultdict(dict)
    for r in rows:  # replays collapse on (node, GPU, time)
        by_gpu[(r[1], r[2])][r[0]] = r
    out: dict[tuple, dict] = {}
    for (node, uuid), samples in by_gpu.items():
        before = {12: None, 16: None}  # counter column -> (time, value) of the GPU's last non-null reading
        for ts in sorted(samples):
            r = samples[ts]
            t = int(ts.timestamp())
            start = t // seconds * seconds
            increase = {}
            for column, prev in before.items():
                if r[column] is None:
                    continue
                if prev is not None and (ts - prev[0]).total_seconds() <= COUNTER_LOOKBACK_S:
                    increase[column] = r[column] - prev[1] if r[column] >= prev[1] else r[column]
                before[column] = (ts, r[column])
            if start + seconds > end:
                continue
            w = out.setdefault((start, node, uuid), {"n": 0, "u": [], "temp": [], "power": [], "ratio": [],
                                                    "energy": [], "ecc": [], "throttle": 0, "xid": None,
                                                    "last_u": None})
            w["n"] += 1
            if r[5] is not None:
                w["u"].append(r[5])
                w["last_u"] = r[5]  # the last non-null reading
            w["temp"].append(r[9])
            w["power"].append(r[10])
            w["ratio"].append(r[7] / r[8])
            w["throttle"] |= r[15]
            w["xid"] = r[19]  # the last XID the GPU reported (0: none yet)
            if 12 in increase:
                w["energy"].append(increase[12])
            if 16 in increase:
                w["ecc"].append(increase[16])
    return out


def _stored(ch: ClickHouse, table: str, window_seconds: int | None = None) -> dict[tuple, dict]:
    """The table's rows by (window, node, GPU); only windows of one size with ``window_seconds``."""
    size = "" if window_seconds is None else f" WHERE window_seconds = {window_seconds:d}"
    rows = ch.query(f"SELECT toUInt32(window_start), node, gpu_uuid, samples, utilization_min, utilization_avg, "
                    f"utilization_max, utilization_last, temperature_max, power_avg, memory_used_ratio, "
                    f"energy_joules, ecc_volatile_increase, throttle_reasons_any, xid_last FROM {table} FINAL{size}"
                    ).result_rows
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def _assert_equal(stored: dict, exact: dict, table: str) -> None:
    assert sorted(stored) == sorted(exact), table
    for key, w in exact.items():
        got = stored[key]
        u = w["u"] or [None]
        want = (w["n"], min(u), sum(w["u"]) / len(w["u"]) if w["u"] else None, max(u), w["last_u"], max(w["temp"]),
                sum(w["power"]) / len(w["power"]), max(w["ratio"]), sum(w["energy"]) if w["energy"] else None,
                sum(w["ecc"]) if w["ecc"] else None, w["throttle"], w["xid"])
        assert got[0] == want[0], (table, key)
        for name, g, e in zip(("min", "avg", "max", "last", "temp", "power", "ratio", "energy", "ecc"),
                              got[1:10], want[1:10]):
            assert g == (e if e is None else pytest.approx(e, rel=1e-6, abs=1e-3)), (table, key, name, g, e)
        assert got[10:] == want[10:], (table, key)


def test_gpu_windows_are_exact_through_replays_late_samples_and_a_restart(ch):
    rows = _samples()
    rng = random.Random(4)
    late = set(rng.sample(range(len(rows) // 3), 40))  # withheld from the first ~45 minutes, sent at the end
    on_time = [r for i, r in enumerate(rows) if i not in late]
    writer = GpuWindowWriter(ch.settings, ch)
    chunk = 1200
    for n, at in enumerate(range(0, len(on_time), chunk)):
        batch = on_time[at:at + chunk]
        ch.insert("gpu_samples", batch, COLUMNS, f"batch-{n}")
        assert writer.rewrite_late(batch) == 0
        writer.tick()
        if n == 4:  # a replay of an earlier stretch, as after a crash before the ack
            ch.insert("gpu_samples", on_time[2000:2600], COLUMNS, "replay")
            assert writer.rewrite_late(on_time[2000:2600]) == 600  # their windows are written: computed again
        if n == 8:
            # A crash in the middle of an INSERT: the newest windows landed, older ones of
            # the same stretch did not. The next worker recomputes its last stretch.
            for table, seconds in (("gpu_windows", 10), ("gpu_windows_1m", 60)):
                newest = ch.query(f"SELECT toUInt32(max(window_start)) FROM {table}").result_rows[0][0]
                ch.command(f"ALTER TABLE {table} DELETE WHERE toUInt32(window_start) BETWEEN {{lo:UInt32}} AND "
                           "{hi:UInt32}", parameters={"lo": newest - 600, "hi": newest - seconds},
                           settings={"mutations_sync": 2})
            writer = GpuWindowWriter(ch.settings, ch)

    withheld = [rows[i] for i in sorted(late)]
    ch.insert("gpu_samples", withheld, COLUMNS, "late")
    assert writer.rewrite_late(withheld) == len(withheld)  # their windows were written: all rewritten
    while writer.tick():
        pass

    high = max(int(r[0].timestamp()) for r in rows)
    closed_end = (high - LATENESS) // 10 * 10
    for table, seconds in (("gpu_windows", 10), ("gpu_windows_1m", 60), ("gpu_windows_1h", 3600)):
        end = closed_end // seconds * seconds
        _assert_equal(_stored(ch, table), _exact(rows, seconds, end), table)
    hours = _stored(ch, "gpu_windows_1h")
    assert sorted({k[0] - T0 for k in hours}) == [0, 3600]  # the third hour is still open
    # Neither the reset (a drop of ~2.6 GJ) nor the 100 s gap shows as a jump: every
    # minute's energy is at most 60 intervals of at most 700 J, plus the few a
    # null reading at a minute's start moves in from the minute before.
    minutes = _stored(ch, "gpu_windows_1m")
    energy = [v[8] for k, v in minutes.items() if k[2] == "GPU-a"]
    assert all(0 < e <= 63 * 700 for e in energy), (min(energy), max(energy))
    nulls = sum(r[12] is None for r in rows)
    assert nulls > 50  # the data has null readings to span
    assert minutes[(T0 + 3060, "node-1", "GPU-a")][0] == 20  # 3100..3119 after the gap


@pytest.fixture
def database(chdb_path):
    """A database of its own on the session's chDB path, migrated."""
    clients = []

    def make(name: str, **settings) -> ClickHouse:
        client = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database=name,
                                          allowed_lateness_seconds=LATENESS, **settings))
        migrate(client, log=lambda _: None)
        clients.append(client)
        return client
    yield make
    for client in clients:
        client.close()


def _one_gpu(start: int, seconds: int, temperature: float | None = None) -> list[list]:
    rng = random.Random(start)
    rows = []
    for t in range(start, start + seconds):
        row = _row(t + 0.5, "node-1", "GPU-a", 0, rng.uniform(0, 100), 1e6 + 500.0 * t, 7, 0, 0, rng)
        if temperature is not None:
            row[9] = temperature
        rows.append(row)
    return rows


def _write_all(writer: GpuWindowWriter) -> None:
    for _ in range(1000):
        if not writer.tick():
            return
    raise AssertionError("the writer never caught up")


def test_a_new_window_size_takes_over_without_replacing_windows_of_the_old_size(database):
    """FLEETPULSE_WINDOW_SECONDS from 10 to 30: the 10 s windows stay as they
    were (those starting on a 30 s boundary too), and 30 s windows are written,
    exact, from the last hour the 10 s writer covered on."""
    ch = database("gpu_windows_resize")
    first, then = _one_gpu(0, 4200), _one_gpu(4200, 1200)
    ch.insert("gpu_samples", first, COLUMNS, "first")
    _write_all(GpuWindowWriter(ch.settings, ch))
    tens = _stored(ch, "gpu_windows")
    newest_ten = max(k[0] for k in tens)

    resized = dataclasses.replace(ch.settings, window_seconds=30)
    ch.insert("gpu_samples", then, COLUMNS, "then")
    _write_all(GpuWindowWriter(resized, ch))

    assert _stored(ch, "gpu_windows", window_seconds=10) == tens
    thirties = _stored(ch, "gpu_windows", window_seconds=30)
    takeover = (newest_ten + 10 - 3600) // 30 * 30  # the last INSERT's stretch, as after any restart
    assert T0 < takeover and min(k[0] for k in thirties) == takeover
    end = int((T0 + 5399.5 - LATENESS) // 30 * 30)  # the end of the last 30 s window the watermark closed
    exact = {k: v for k, v in _exact(first + then, 30, end).items() if k[0] >= takeover}
    _assert_equal(thirties, exact, "gpu_windows (30 s)")


RULES = """
rules:
  - name: GPUHot
    metric: gpu_temperature_max
    op: ">"
    threshold: 75
    for: 1
    keep_firing_for: 1
    severity: critical
  - name: Errors
    metric: error_rate
    op: ">"
    threshold: 0.5
    severity: warning
"""


def test_gpu_rules_wait_for_windows_the_writer_has_not_written(database, tmp_path):
    """Windows the watermark closed but the GPU writer has not written yet read
    as "no sample" (which resolves an alert): GPU rules wait for the writer,
    request rules go on with the watermark."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    ch = database("gpu_rules_wait", alert_rules=str(rules))
    writer = GpuWindowWriter(ch.settings, ch)
    published = []
    runner = AlertEvaluator(ch.settings, ch, published.extend, writer.written_end)

    ch.insert("gpu_samples", _one_gpu(0, 600, temperature=80.0), COLUMNS, "hot")
    _write_all(writer)
    assert runner.tick() == 2  # each kind of rule starts at the newest closed window: hot, fires
    ch.insert("gpu_samples", _one_gpu(600, 120, temperature=80.0), COLUMNS, "hotter")
    assert runner.tick() == 12  # 12 windows closed: the request rules see them, the GPU rules wait
    _write_all(writer)
    assert runner.tick() == 12  # now the GPU rules
    assert [(e["alert.name"], e["status"]) for e in published] == [("GPUHot", "firing")]
    stored = ch.query("SELECT alert_name, status FROM alerts").result_rows
    assert stored == [("GPUHot", "firing")]


def test_a_late_sample_leaves_rollup_windows_that_began_before_the_retention_alone(database, monkeypatch):
    """The TTL deletes gpu_samples older than FLEETPULSE_WINDOWS_TTL_DAYS: a late
    sample in an hour that began before that must not recompute the hour from
    what is left of it, but its own minute is computed again."""
    ch = database("gpu_windows_ttl")
    rows = _one_gpu(0, 3700)
    late = rows.pop(700)  # in the minute T0 + 660..720
    ch.insert("gpu_samples", rows, COLUMNS, "kept")
    writer = GpuWindowWriter(ch.settings, ch)
    _write_all(writer)
    count = "SELECT samples FROM {t} FINAL WHERE toUInt32(window_start) = {{w:UInt32}}"
    assert ch.query(count.format(t="gpu_windows_1h"), parameters={"w": T0}).result_rows == [(3599,)]
    assert ch.query(count.format(t="gpu_windows_1m"), parameters={"w": T0 + 660}).result_rows == [(59,)]

    # As time passes, the retention's edge moves into the hour and the TTL deletes its first samples.
    monkeypatch.setattr(gpu_windows.Retention, "now",
                        classmethod(lambda cls, settings: cls(T0 + 300, "FLEETPULSE_WINDOWS_TTL_DAYS=30")))
    ch.command("ALTER TABLE gpu_samples DELETE WHERE timestamp < toDateTime64({t:UInt32}, 3, 'UTC')",
               parameters={"t": T0 + 300}, settings={"mutations_sync": 2})
    ch.insert("gpu_samples", [late], COLUMNS, "late")
    assert writer.rewrite_late([late]) == 1
    assert ch.query(count.format(t="gpu_windows_1h"), parameters={"w": T0}).result_rows == [(3599,)]
    assert ch.query(count.format(t="gpu_windows_1m"), parameters={"w": T0 + 660}).result_rows == [(60,)]


def test_a_refill_begins_at_the_first_window_wholly_inside_the_retention(database, monkeypatch):
    """After an upgrade the tables are empty and the oldest stored samples sit at
    the retention's edge, where the TTL has cut into their hour: each grain
    starts at its first whole window, so no partial hour is written (and kept
    for the 1 h grain's two years)."""
    ch = database("gpu_windows_refill")
    ch.insert("gpu_samples", _one_gpu(250, 7150), COLUMNS, "kept")
    monkeypatch.setattr(gpu_windows.Retention, "now",
                        classmethod(lambda cls, settings: cls(T0 + 290, "FLEETPULSE_WINDOWS_TTL_DAYS=30")))
    _write_all(GpuWindowWriter(ch.settings, ch))
    first = {table: ch.query(f"SELECT toUInt32(min(window_start)) - {T0} FROM {table}").result_rows[0][0]
             for table in ("gpu_windows", "gpu_windows_1m", "gpu_windows_1h")}
    assert first == {"gpu_windows": 290, "gpu_windows_1m": 300, "gpu_windows_1h": 3600}
    assert ch.query("SELECT samples FROM gpu_windows_1h FINAL").result_rows == [(3600,)]
