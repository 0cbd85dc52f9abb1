"""fleetpulse: streaming telemetry for LLM inference fleets."""
