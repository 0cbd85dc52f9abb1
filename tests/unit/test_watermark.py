"""Per-partition watermarks: late flags follow each partition's own event-time history."""

import numpy as np

from fleetpulse.streams.watermark import NO_EVENT_TIME, late_flags


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
