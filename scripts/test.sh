#!/usr/bin/env bash
# Set up (see bootstrap.sh), then run the unit tests and the integration tests
# (which start their own Kafka broker and use real chDB). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
set +e
.venv/bin/python -m pytest tests -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then  # pytest: no tests collected
  if [ $# -gt 0 ]; then
    echo "no test matched the arguments: $*" >&2
    exit 0
  fi
  echo "pytest collected no tests at all: the suite must never be empty" >&2
  exit 1
fi
exit "$rc"
