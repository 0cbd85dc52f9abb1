#!/usr/bin/env bash
# Set up (see bootstrap.sh), then run the demo on the embedded defaults:
# a local Kafka broker, chDB under ./.fleetpulse, the worker and a simulated fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/fleetpulse demo "$@"
