"""Effectively once into ClickHouse: SIGKILL the worker at random moments while
500,000 events stream in, restart it each time, and the totals must still equal
the simulator's ground truth exactly: nothing lost, nothing counted twice."""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.workers import isolated_settings, metric_value, read_truth, run_simulator

pytestmark = pytest.mark.integration

EVENTS = 500_000
RATE = 10_000  # events/s of wall-clock time: the stream lasts ~50 s, long enough for 5 crashes
KILLS = 5
STATS = ("SELECT toUnixTimestamp(window_start) AS window_start, model, node, requests, errors, "
         "input_tokens, output_tokens FROM request_stats")


def test_sigkill_five_times_mid_stream_and_totals_stay_exact(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("crash")
    # A stable worker id (Kafka static membership): the restarted worker takes the
    # partitions over at once instead of waiting out the dead one's session.
    settings = isolated_settings(kafka_settings, tmp, batch_max_messages=200, worker_id="crash-test-worker")
    truth_path = tmp / "truth.jsonl"
    worker = start_worker(settings)
    simulator = run_simulator(settings, "--count", str(EVENTS), "--rate", str(RATE), "--seed", "7",
                              "--pace", "realtime", "--truth", str(truth_path))
    rng = random.Random(20261125)
    seen_at_kill = []
    for _ in range(KILLS):
        time.sleep(rng.uniform(3.0, 8.0))
        seen_at_kill.append(worker.scalar("SELECT sum(requests) FROM request_windows"))
        worker.kill()
        worker.start()
    assert simulator.wait(timeout=300) == 0, simulator.stdout.read()
    # Every kill landed while events were still arriving or being written.
    assert all(n is None or n < EVENTS for n in seen_at_kill), seen_at_kill
    assert len(set(seen_at_kill)) == KILLS, f"the worker made no progress between kills: {seen_at_kill}"

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
    # The last restart re-read messages whose rows were already written, and skipped them.
    print(f"sum(requests) at each kill: {seen_at_kill}; skipped on the last restart: "
          f"{metric_value(worker.metrics(), 'fleetpulse_messages_skipped_total')}")
