"""The worker process: the only faust code.

- ``main``: ``fleetpulse worker``: check the services, migrate, run.
- ``app``: builds the faust app, its agents and timers, from one settings object.
- ``consumer``: the requests topic consumed in whole batches (confluent-kafka);
  ``librdkafka``: its settings, and messages to columns.
- ``durable``: "durable, then ack": dead letters, then ClickHouse, one retry
  loop and one chDB thread for both agents; ``handler`` (request batches) and
  ``gpu_batches`` write through it; ``deadletter``: the dead-letter topic.
- ``stall``: whether ingestion is stalled, for /health.
- ``web``, ``webserver``, ``query``: the HTTP endpoints, faust's web server
  with bounded connections, and read-only user SQL (request bodies are checked
  by fleetpulse/params.py).
- ``pages``: the built-in dashboard pages and their data endpoints, from the
  panel catalogue (streams/panels); ``offload``: blocking calls (queries) on
  daemon threads, off the event loop; ``threadnames``: the worker's dealings
  with libc: its threads under their names in the OS too (to see where its
  CPU goes), its malloc arenas, the free heap given back when idle.
"""
