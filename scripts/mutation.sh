#!/usr/bin/env bash
# Mutation testing with mutmut over kvc/backends, kvc/compiler, kvc/lock and
# kvc/spec (configured under [tool.mutmut] in pyproject.toml). Not run in CI:
# a full run takes long on a 2-core machine; run it before changing the code
# it names and record the survivors in docs/mutation-report.md.
#
#   bash scripts/mutation.sh                 # the areas the report must keep clean
#   bash scripts/mutation.sh lock spec       # whole packages
#   bash scripts/mutation.sh 'kvc.lock.select*'   # any mutmut name pattern
#   nohup nice -n 10 bash scripts/mutation.sh backends > mutation.log 2>&1 &
#
# Stopping it (kill) keeps every result so far (mutants/*.meta); the same
# command with --resume runs only the mutants not run yet
# (bash scripts/mutation.sh --resume backends). Delete mutants/ and start over
# after changing the tests or pulling: mutmut re-traces only tests it has not seen.
#
# Each mutant runs only the fast tests that executed the mutated function
# (mutmut records which tests call which function in a first, traced run of
# the fast subset), so a module's mutants meet that module's tests.
# Needs the dev extra: .venv/bin/pip install -e '.[dev]'
set -euo pipefail

cd "$(dirname "$0")/.."
MUTMUT=.venv/bin/mutmut
PATH="$PWD/.venv/bin:$PATH"  # mypy, for type_check_command
[ -x "$MUTMUT" ] || { echo "mutation.sh: install the dev extra first: .venv/bin/pip install -e '.[dev]'" >&2; exit 1; }

# Areas -> mutmut mutant-name patterns (module path, then x_<function> or
# xǁ<Class>ǁ<method>).
patterns_for() {
  case "$1" in
    backends | compiler | lock | spec) echo "kvc.$1.*" ;;
    # Every backend escapes through Emitter.literal with its ESCAPES table
    # (class constants, which mutmut leaves alone: tests/backends/test_escaping.py
    # fails when a table entry changes).
    escaping) echo "kvc.backends.walk.xǁEmitterǁliteral*" "kvc.backends.walk.xǁEmitterǁenv*" ;;
    checksums) echo "kvc.lock.select.*" "kvc.lock.parsers.*" ;;
    rewrite) echo "kvc.lock.rewrite.*" ;;
    env) echo "kvc.compiler.env.*" ;;
    *) echo "$1" ;;
  esac
}

# The mutants matching the patterns that have no result yet. mutmut reruns every
# mutant a pattern names, so a stopped run resumes by naming the rest.
not_run() {
  .venv/bin/python - "$@" <<'PY'
import fnmatch, json, pathlib, sys
for meta in sorted(pathlib.Path("mutants").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if code is None and any(fnmatch.fnmatch(name, p) for p in sys.argv[1:]):
            print(name)
PY
}

main() {
  local -a areas patterns=()
  local resume=""
  if [ "${1:-}" = "--resume" ]; then resume=1; shift; fi
  areas=("$@")
  [ "${#areas[@]}" -gt 0 ] || areas=(escaping checksums rewrite env)
  local area
  for area in "${areas[@]}"; do
    read -r -a more <<<"$(patterns_for "$area")"
    patterns+=("${more[@]}")
  done
  echo "mutation.sh: mutating ${patterns[*]}"
  if [ -n "$resume" ] && [ -d mutants ]; then
    mapfile -t patterns < <(not_run "${patterns[@]}")
    [ "${#patterns[@]}" -gt 0 ] || { echo "mutation.sh: every one of them has a result"; exit 0; }
    echo "mutation.sh: resuming with the ${#patterns[@]} not run yet"
  fi
  # One worker by default: the machine is shared (MUTATION_CHILDREN=N for more).
  "$MUTMUT" run --max-children "${MUTATION_CHILDREN:-1}" "${patterns[@]}"
  echo "mutation.sh: surviving mutants (show one with: $MUTMUT show NAME)"
  "$MUTMUT" results | grep -E ': (survived|timeout|suspicious)$' || echo "  none"
}

main "$@"
