"""Drift detection on the stream, per model and feature.

- ``features``: the features and references settings may name, parsed once (pure).
- ``stats``: binning, PSI, KS, JS and the sample-size-aware decision (pure).
- ``evaluator``: judges every window the fleet watermark has closed against its
  reference (the previous span, yesterday, or a frozen baseline), stores the
  result in drift_windows and sets the gauges; alerts come from the alert
  engine's drift rules, which read drift_windows.
- ``baselines``: frozen baselines (``fleetpulse drift baseline``, /drift/baseline).
"""
