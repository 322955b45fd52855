#!/usr/bin/env bash
# Create .venv and install kvc into it; with --test, also everything the test
# suite needs (Python test extras and the Debian tools of the integration tests).
# Works on a fresh Debian 12 machine: system Python refuses `pip install`
# (PEP 668), so kvc always lives in its own virtual environment.
set -euo pipefail

cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian ships venv (and ensurepip) separately from python3.
ensure_venv_module() {
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
}

main() {
  local mode="${1:-}"
  ensure_venv_module
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$mode" = "--test" ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
    bash scripts/install-integration-deps.sh
  else
    .venv/bin/python -m pip install -q .
  fi
}

main "$@"
