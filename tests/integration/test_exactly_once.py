"""Effectively once into ClickHouse: SIGKILL the worker at random moments while
500,000 events (and the simulated fleet's GPU samples) stream in, restart it
each time, and the totals (per tenant too) must still equal the simulator's ground truth
exactly: nothing lost, nothing counted twice; every GPU window holds exactly
its stored samples."""

from __future__ import annotations

import random
import time

import orjson
import pytest

from tests.integration.workers import advance_gpu_watermark, isolated_settings, metric_value, read_truth, run_simulator

pytestmark = pytest.mark.integration

EVENTS = 500_000
RATE = 5_000  # events/s of wall-clock time: the stream lasts ~100 s, long enough for 5 crashes on a loaded machine
KILLS = 5
WRITTEN = "SELECT sum(requests) FROM request_windows"
STATS = ("SELECT toUnixTimestamp(window_start) AS window_start, model, node, requests, errors, "
         "input_tokens, output_tokens FROM request_stats")


def test_sigkill_five_times_mid_stream_and_totals_stay_exact(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("crash")
    # A stable worker id (Kafka static membership): the restarted worker takes the
    # partitions over at once instead of waiting out the dead one's session.
    # Runs of 256 KiB (an envelope or two each): the backlog a restart finds is
    # handed over four runs at a time, decoded run by run and written in one
    # insert (merge.merge_results), so the kills land in merged writes too.
    settings = isolated_settings(kafka_settings, tmp, batch_max_messages=200, batch_max_bytes=256 * 1024,
                                 worker_id="crash-test-worker")
    truth_path = tmp / "truth.jsonl"
    worker = start_worker(settings)
    simulator = run_simulator(settings, "--count", str(EVENTS), "--rate", str(RATE), "--seed", "7",
                              "--pace", "realtime", "--truth", str(truth_path), "--gpu-samples",
                              "--tenants", "20000")
    rng = random.Random(20261125)
    seen_at_kill = []
    for _ in range(KILLS):
        # Kill a worker only once it has been seen writing since it (re)started,
        # then at a random moment of its work: on a loaded machine a restart can
        # take longer than any fixed pause, and killing a worker that has not
        # got going yet would test nothing.
        started_at = worker.scalar(WRITTEN) or 0
        written = worker.wait_for_progress(WRITTEN, beyond=started_at, timeout=180)
        assert written is not None and written > started_at, f"no progress in 180 s after a restart:\n{worker.log_tail()}"
        time.sleep(rng.uniform(0.5, 3.0))
        seen_at_kill.append(worker.scalar(WRITTEN))
        worker.kill()
        worker.start()
    assert simulator.wait(timeout=300) == 0, simulator.stdout.read()
    # Every kill landed while events were still arriving or being written.
    assert all(n < EVENTS for n in seen_at_kill), seen_at_kill

    total = worker.wait_for("SELECT sum(requests) FROM request_stats", EVENTS, timeout=300)
    assert total == EVENTS, f"{total} of {EVENTS} after {KILLS} crashes:\n{worker.log_tail()}"
    truth = read_truth(truth_path)
    assert sum(t["requests"] for t in truth.values()) == EVENTS
    rows = {(r["window_start"], r["model"], r["node"]): r for r in worker.query(STATS)}
    assert rows.keys() == truth.keys()
    for key, expected in truth.items():
        for column in ("requests", "errors", "input_tokens", "output_tokens"):
            assert rows[key][column] == expected[column], (key, column)
    for grain in ("1m", "1h"):
        rolled = worker.scalar(f"SELECT sum(requests) FROM request_stats_rollup WHERE grain = '{grain}'")
        assert rolled == EVENTS, f"rollup {grain}: {rolled}"
    # Tenant rows too (written in an INSERT of their own, before the window rows).
    tenants = {(r["window_start"], r["tenant"]): r
               for r in map(orjson.loads, truth_path.with_suffix(".tenants.jsonl").read_bytes().splitlines())}
    stored = worker.query("SELECT toUnixTimestamp(window_start) AS window_start, tenant, sum(requests) AS requests, "
                          "sum(errors) AS errors, sum(input_tokens) AS input_tokens, "
                          "sum(output_tokens) AS output_tokens FROM tenant_windows GROUP BY window_start, tenant")
    columns = ("requests", "errors", "input_tokens", "output_tokens")
    assert {(int(r["window_start"]), r["tenant"]): [int(r[c]) for c in columns] for r in stored} == \
        {key: [r[c] for c in columns] for key, r in tenants.items()}
    # The last restart re-read messages whose rows were already written, and skipped them.
    _assert_gpu_windows_match_their_samples(worker)
    print(f"sum(requests) at each kill: {seen_at_kill}; skipped on the last restart: "
          f"{metric_value(worker.metrics(), 'fleetpulse_messages_skipped_total')}")


# Per window, straight from the stored samples (no counters: those are checked on chDB
# in test_gpu_windows.py against a computation in Python).
_GPU_EXACT = """
SELECT toUnixTimestamp(toStartOfInterval(timestamp, toIntervalSecond({w:UInt32}))) AS w, node, gpu_uuid,
       count() AS samples, round(avg(utilization), 6) AS utilization_avg, max(temperature) AS temperature_max,
       round(avg(power_usage), 6) AS power_avg
FROM gpu_samples FINAL GROUP BY w, node, gpu_uuid
"""


def _assert_gpu_windows_match_their_samples(worker) -> None:
    # Close every minute of the run: a sample a few minutes ahead moves the watermark.
    advance_gpu_watermark(worker.settings, time.time() + 180)
    arrived = "SELECT toUnixTimestamp(max(timestamp)) > toUnixTimestamp(now()) + 60 FROM gpu_samples"
    assert worker.wait_for(arrived, 1, timeout=60) == 1
    newest = worker.scalar("SELECT toUnixTimestamp(max(timestamp)) FROM gpu_samples")
    closed_end = (newest - worker.settings.allowed_lateness_seconds) // 10 * 10 - 10
    for table, seconds in (("gpu_windows", 10), ("gpu_windows_1m", 60)):
        end = closed_end // seconds * seconds
        rows = worker.query(_GPU_EXACT.replace("{w:UInt32}", str(seconds)))
        exact = {(r["w"], r["node"], r["gpu_uuid"]): r for r in rows if r["w"] + seconds <= end}
        written = {}
        for _ in range(30):  # the last windows close on the worker's next tick
            written = {(r["w"], r["node"], r["gpu_uuid"]): r for r in worker.query(
                f"SELECT toUnixTimestamp(window_start) AS w, node, gpu_uuid, samples, "
                f"round(utilization_avg, 6) AS utilization_avg, temperature_max, round(power_avg, 6) AS power_avg "
                f"FROM {table} FINAL WHERE window_start < toDateTime({end})")}
            if written.keys() >= exact.keys():
                break
            time.sleep(1)
        assert exact and written == exact, table
