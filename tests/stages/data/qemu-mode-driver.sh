#!/usr/bin/env bash
# A minimal stand-in for the test driver (contract 4), for testing the qemu
# mode on its own: source lib.sh and test-qemu.sh, provide the globals, call
# mode_up, mode_boot, each check in KVC_CHECKS, and on every exit path
# mode_collect_logs then mode_down. Usage: qemu-mode-driver.sh STAGES_DIR.
set -euo pipefail
STAGES_DIR="$1"
export KVC_STAGE="test"
# shellcheck source=/dev/null
. "$STAGES_DIR/lib.sh"
# shellcheck source=/dev/null
. "$STAGES_DIR/test-qemu.sh"

remaining() {
  local left=$((DEADLINE - $(date +%s)))
  [ "$left" -ge 1 ] || left=1
  printf '%s\n' "$left"
}

finish() {
  local rc=$?
  set +e
  mode_collect_logs || echo "shim: mode_collect_logs failed" >&2
  mode_down || echo "shim: mode_down failed" >&2
  echo "shim: done rc=$rc" >&2
  rm -rf "$WORK"
  exit "$rc"
}

WORK="$(mktemp -d)"
DEADLINE=$(($(date +%s) + ${KVC_TIMEOUT_SECONDS:-60}))
STAGED_REF="$(head -n1 "$KVC_STAGED_DIR/ref")"
SSH_KEY="$WORK/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C kvc-test -f "$SSH_KEY"
USER_DATA="$WORK/user-data"
sed "s|__KVC_SSH_PUBKEY__|$(cat "$SSH_KEY.pub")|" "$KVC_USER_DATA" >"$USER_DATA"
export WORK DEADLINE STAGED_REF SSH_KEY USER_DATA
trap finish EXIT
mode_up
mode_boot
IFS=, read -r -a checks <<<"${KVC_CHECKS:-boot}"
for check in "${checks[@]}"; do
  case "$check" in
    boot) mode_check_boot ;;
    guest-agent) mode_check_guest_agent ;;
    ssh) mode_check_ssh ;;
  esac
  echo "shim: check $check passed" >&2
done
