#!/usr/bin/env bash
# Run the shipped kvc-check pre-commit hook over every example, for every
# backend, exactly as a user's repository would (pre-commit installs the hook
# from this checkout at HEAD). Exits non-zero when any example is stale.
set -euo pipefail
cd "$(dirname "$0")/.."

config="$(mktemp --suffix=.yaml)"
trap 'rm -f "$config"' EXIT
# Every registered backend (kvc/backends/__init__.py), so a new one is checked too.
read -r -a backends < <(.venv/bin/python -c 'from kvc.backends import BACKENDS; print(*BACKENDS)')
{
  printf 'repos:\n  - repo: %s\n    rev: %s\n    hooks:\n' "$PWD" "$(git rev-parse HEAD)"
  for spec in examples/*/kvc.yaml; do
    for backend in "${backends[@]}"; do
      printf '      - id: kvc-check\n        alias: %s\n        args: [%s, --backend, %s]\n' \
        "$(basename "$(dirname "$spec")")-$backend" "$spec" "$backend"
    done
  done
} >"$config"
.venv/bin/python -m pre_commit run --config "$config" --all-files
