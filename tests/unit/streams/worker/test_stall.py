"""/health's stall watch (streams/worker/stall.py)."""

from fleetpulse.streams.worker.stall import StallWatch


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_batch_waiting_past_the_threshold_is_a_stall_with_its_last_error():
    clock = Clock()
    watch = StallWatch(clock)
    assert watch.stalled(60) is None
    with watch.working("request batch"):
        clock.now += 59
        assert watch.stalled(60) is None
        watch.failed("clickhouse: connection refused")
        clock.now += 2
        reason = watch.stalled(60)
        assert reason == ("a request batch has been waiting to be written for 61s (limit 60s); "
                          "last error: clickhouse: connection refused")
    assert watch.stalled(60) is None
    with watch.working("GPU batch"):
        clock.now += 100
        assert "GPU batch" in watch.stalled(60) and "last error" not in watch.stalled(60)


def test_the_oldest_of_overlapping_batches_counts():
    clock = Clock()
    watch = StallWatch(clock)
    with watch.working("request batch"):
        clock.now += 50
        with watch.working("GPU batch"):
            clock.now += 20
            assert "request batch" in watch.stalled(60)
