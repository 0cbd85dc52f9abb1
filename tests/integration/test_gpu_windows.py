"""GPU windows on real chDB, against an exact computation on the same samples:
the base window, 1 minute and 1 hour tables stay exact through replayed
samples, late samples, a counter reset, a gap, and a worker restart after an
INSERT that a crash cut short."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import migrate
from fleetpulse.settings import load_settings
from fleetpulse.streams.gpu import COLUMNS
from fleetpulse.streams.gpu_windows import COUNTER_LOOKBACK_S, GpuWindowWriter
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
            rows.append(_row(t + 0.25, "node-1", "GPU-a", 0, rng.uniform(0, 100), energy_a, ecc_a,
                             rng.choice([0, 0, 0, 4, 64]), 0 if t < 4321 else 79, rng))
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
        prev = None
        for ts in sorted(samples):
            r = samples[ts]
            t = int(ts.timestamp())
            start = t // seconds * seconds
            increase = ecc = None
            if prev is not None and (ts - prev[0]).total_seconds() <= COUNTER_LOOKBACK_S:
                increase = r[12] - prev[12] if r[12] >= prev[12] else r[12]
                if r[16] is not None and prev[16] is not None:
                    ecc = r[16] - prev[16] if r[16] >= prev[16] else r[16]
            prev = r
            if start + seconds > end:
                continue
            w = out.setdefault((start, node, uuid), {"u": [], "temp": [], "power": [], "ratio": [], "energy": [],
                                                    "ecc": [], "throttle": 0, "xid": None, "last_u": None})
            w["u"].append(r[5])
            w["last_u"] = r[5]
            w["temp"].append(r[9])
            w["power"].append(r[10])
            w["ratio"].append(r[7] / r[8])
            w["throttle"] |= r[15]
            w["xid"] = r[19]  # the last XID the GPU reported (0: none yet)
            if increase is not None:
                w["energy"].append(increase)
            if ecc is not None:
                w["ecc"].append(ecc)
    return out


def _stored(ch: ClickHouse, table: str) -> dict[tuple, dict]:
    rows = ch.query(f"SELECT toUInt32(window_start), node, gpu_uuid, samples, utilization_min, utilization_avg, "
                    f"utilization_max, utilization_last, temperature_max, power_avg, memory_used_ratio, "
                    f"energy_joules, ecc_volatile_increase, throttle_reasons_any, xid_last FROM {table} FINAL"
                    ).result_rows
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def _assert_equal(stored: dict, exact: dict, table: str) -> None:
    assert sorted(stored) == sorted(exact), table
    for key, w in exact.items():
        got = stored[key]
        want = (len(w["u"]), min(w["u"]), sum(w["u"]) / len(w["u"]), max(w["u"]), w["last_u"], max(w["temp"]),
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
            newest = ch.query("SELECT toUInt32(max(window_start)) FROM gpu_windows").result_rows[0][0]
            ch.command("ALTER TABLE gpu_windows DELETE WHERE toUInt32(window_start) BETWEEN {lo:UInt32} AND "
                       "{hi:UInt32}", parameters={"lo": newest - 600, "hi": newest - 10},
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
    # minute's energy is at most 60 intervals of at most 700 J.
    minutes = _stored(ch, "gpu_windows_1m")
    energy = [v[8] for k, v in minutes.items() if k[2] == "GPU-a"]
    assert all(0 < e <= 60 * 700 for e in energy), min(energy)
    assert minutes[(T0 + 3060, "node-1", "GPU-a")][0] == 20  # 3100..3119 after the gap
