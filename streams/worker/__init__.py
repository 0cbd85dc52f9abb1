"""The worker process: the only faust code.

- ``main``: ``fleetpulse worker``: check the services, migrate, run.
- ``app``: builds the faust app, its agents and timers, from one settings object.
- ``consumer``: the requests topic consumed in whole batches (confluent-kafka).
- ``handler``: "durable, then ack": dead letters, then ClickHouse, retried
  while a sink is unavailable; ``deadletter``: the dead-letter topic.
- ``stall``: whether ingestion is stalled, for /health.
- ``web``, ``webserver``, ``query``, ``params``: the HTTP endpoints, faust's
  web server with bounded connections, read-only user SQL, and request checks.
"""
