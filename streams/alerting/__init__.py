"""Alert rules on closed windows, and where their alerts go.

- ``rules``: the YAML rule file, parsed and checked at start-up (default_rules.yml).
- ``engine``: the state machine per rule and series: pending, firing, resolved,
  silences and inhibition (pure).
- ``evaluator``: runs the rules on each closed window, from ClickHouse, and
  stores and sends what they decide.
- ``silences``: silences kept in ClickHouse so every worker applies the same.
- ``publish``: the alerts topic and the webhook; ``notify``: HTTP POST with
  retries; ``outbox``: results decided but not yet delivered.
"""
