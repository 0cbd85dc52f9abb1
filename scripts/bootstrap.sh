#!/usr/bin/env bash
# Set up everything fleetpulse needs on a fresh Debian machine, idempotently:
# Java for the Kafka broker, Prometheus, Alertmanager and Chromium for the tests,
# a Rust compiler for the batch scanner (apt, only if missing), a virtualenv with
# the project and its test dependencies (pip; it builds the scanner), and
# Apache Kafka's jars (Maven, once).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing: $* — install them (Debian: apt-get install $*) and run again"; exit 1
  fi
  log "installing Debian packages: $*"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PYTHON=${PYTHON:-python3}
need_pkgs=()
command -v "$PYTHON" >/dev/null || need_pkgs+=(python3 python3-venv)
"$PYTHON" -c 'import ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
command -v java >/dev/null || need_pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_pkgs+=(maven)
# Real Prometheus and Alertmanager for the integration tests, promtool for the shipped rules.
command -v prometheus >/dev/null || need_pkgs+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_pkgs+=(prometheus-alertmanager)
# A real browser for the built-in pages' test (Playwright drives it; it downloads no browser).
command -v chromium >/dev/null || need_pkgs+=(chromium)
# The hot path's batch scanner is Rust (schemas/native, no crates): rustup's
# cargo if there is one, else Debian's.
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || need_pkgs+=(cargo rustc)
[ ${#need_pkgs[@]} -eq 0 ] || apt_install "${need_pkgs[@]}"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { log "Python >= 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"; exit 1; }

if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/pip ]; then
  rm -rf .venv
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.fleetpulse-installed
# The editable install builds the scanner once: a change to its sources, or a
# scanner gone missing, installs again.
want=$(cat pyproject.toml schemas/native/Cargo.toml schemas/native/src/*.rs | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! ls schemas/_scan*.so >/dev/null 2>&1; then
  log "installing fleetpulse and its dependencies into .venv (pip)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

log "fetching Apache Kafka's jars with Maven (cached after the first time)"
.venv/bin/fleetpulse kafka fetch >&2
