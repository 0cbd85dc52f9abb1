"""Per-partition watermarks: late flags follow each partition's own event-time history."""

import numpy as np

from fleetpulse.streams.windows.watermark import NO_EVENT_TIME, late_flags


def test_each_partition_has_its_own_watermark():
    ts = np.array([100.0, 10.0, 50.0, 55.0])
    sources = np.array([0, 1, 0, 1])
    late, new_max = late_flags(ts, sources, [NO_EVENT_TIME, NO_EVENT_TIME], window_seconds=10, lateness=30)
    # Partition 0: watermark 70 before t=50, whose window ends at 60 -> late.
    # Partition 1: watermark -20 before t=55 -> on time.
    assert late.tolist() == [False, False, True, False]
    assert new_max == [100.0, 55.0]


def test_prior_high_water_mark_carries_over_batches():
    late, new_max = late_flags(np.array([69.0, 70.0]), np.array([0, 0]), [100.0], 10, 30)
    assert late.tolist() == [True, False]  # window [60, 70) ends at 70 <= 100 - 30
    assert new_max == [100.0]


def test_zero_lateness_closes_a_window_as_soon_as_time_passes_its_end():
    late, _ = late_flags(np.array([20.0, 19.9, 10.0]), np.array([0, 0, 0]), [NO_EVENT_TIME], 10, 0)
    assert late.tolist() == [False, True, True]  # watermark 20 closes [10, 20) at once


def test_the_fleet_waits_for_the_partition_behind_until_it_goes_idle():
    from fleetpulse.streams.windows.watermark import IdleTracker, fleet_high_water, newest_closed_start

    a, b, host = ("requests", "t:0"), ("requests", "t:1"), ("gpu", "node-a")
    tracker = IdleTracker(idle_seconds=60)
    marks = tracker.observe({a: 1000.0, b: 940.0, host: 1010.0}, busy=set(), now=0)
    assert fleet_high_water(marks, ["requests"]) == 940.0  # node-b, 60 s behind, holds it
    assert fleet_high_water(marks, ["requests", "gpu"]) == 940.0
    assert newest_closed_start(940.0, 10, 30) == 900  # [900, 910) ends at 910 = 940 - 30: closed
    assert newest_closed_start(939.0, 10, 30) == 890
    # b keeps sending (its high water moves): never idle, however long it lags.
    marks = tracker.observe({a: 1100.0, b: 1040.0, host: 1110.0}, busy=set(), now=100)
    assert not marks[b].idle and fleet_high_water(marks, ["requests"]) == 1040.0
    # b stops: 59 s later it still holds the fleet, at 60 s it goes idle.
    marks = tracker.observe({a: 1160.0, b: 1040.0, host: 1170.0}, busy=set(), now=159)
    assert fleet_high_water(marks, ["requests"]) == 1040.0
    marks = tracker.observe({a: 1161.0, b: 1040.0, host: 1171.0}, busy=set(), now=160)
    assert marks[b].idle and fleet_high_water(marks, ["requests"]) == 1161.0
    # ...unless it has messages on the way (consumer lag): then it is not idle.
    marks = tracker.observe({a: 1161.0, b: 1040.0, host: 1171.0}, busy={b}, now=161)
    assert not marks[b].idle and fleet_high_water(marks, ["requests"]) == 1040.0


def test_when_every_source_is_idle_the_newest_stands_and_none_before_data():
    from fleetpulse.streams.windows.watermark import IdleTracker, fleet_high_water

    a, b = ("requests", "t:0"), ("requests", "t:1")
    tracker = IdleTracker(idle_seconds=5)
    assert fleet_high_water(tracker.observe({}, set(), now=0), ["requests"]) is None
    tracker.observe({a: 100.0, b: 50.0}, set(), now=0)
    marks = tracker.observe({a: 100.0, b: 50.0}, set(), now=5)
    assert marks[a].idle and marks[b].idle
    assert fleet_high_water(marks, ["requests"]) == 100.0  # nothing is on the way
    assert fleet_high_water(marks, ["gpu"]) is None


def test_a_busy_partition_with_nothing_written_holds_the_fleet_for_the_idle_time_only():
    from fleetpulse.streams.windows.watermark import IdleTracker, fleet_high_water

    a, b = ("requests", "t:0"), ("requests", "t:1")
    tracker = IdleTracker(idle_seconds=30)
    marks = tracker.observe({a: 100.0}, busy={b}, now=0)
    assert fleet_high_water(marks, ["requests"]) is None  # b's rows are on the way
    marks = tracker.observe({a: 130.0}, busy={b}, now=30)  # only bad messages, say: nothing ever written
    assert marks[b].idle and fleet_high_water(marks, ["requests"]) == 130.0
