"""Drift detection on the stream, per model and feature.

- ``stats``: binning, PSI, KS, JS and the sample-size-aware decision (pure).
- ``evaluator``: judges every window the fleet watermark has closed against its
  reference (previous span, yesterday, or a frozen baseline), stores the
  result in drift_windows and sets the gauges; baselines are frozen here too.
"""
