"""The panel catalogue: every chart fleetpulse shows, defined once.

Grafana's dashboards (``fleetpulse dashboards`` writes them to
infra/grafana/dashboards/) and the worker's built-in pages (``/``, ``/d/<name>``)
are both made from it, so the two can never disagree.

- ``catalogue``: Panel, Variable and Dashboard, and the lookup of all of them (pure).
- ``requests``: the request dashboards: fleet overview and model detail (pure).
- ``fleet``: the GPU, drift and alert dashboards (pure).
- ``health``: the pipeline-health and cardinality dashboards, in PromQL (pure).
- ``dashboards``: the catalogue: every dashboard, lookups, and its own checks (pure).
- ``macros``: the Grafana ClickHouse plugin's macros, expanded two ways: as the
  plugin does (literals, for tests and for a reader's eye) and with bound
  query parameters (what the worker runs), and the intervals (pure).
- ``grafana``: a dashboard as Grafana's JSON model (pure).
- ``serve``: one panel's answer for the pages: parameters checked, the query
  run on the read-only session, rows as JSON.

``static/`` holds the pages: HTML, JavaScript, CSS and uPlot, vendored from npm.
"""
