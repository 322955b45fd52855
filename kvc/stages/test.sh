#!/usr/bin/env bash
# kvc test stage: the driver. It validates the inputs, chooses how to boot the
# staged image (a mode), and runs the same steps in every mode:
#
#   mode_up -> mode_boot -> mode_check_<check>... ; always mode_collect_logs
#   then mode_down
#
# Modes live in test-<mode>.sh next to this file and define exactly those
# functions (docs/stages.md, "Test modes"):
# - kubevirt: KubeVirt on kind, with KVM, or with emulation on amd64;
# - qemu: qemu-system directly, for arm64 without KVM, which KubeVirt cannot
#   emulate (it supports only host-passthrough on arm64:
#   kubevirt/kubevirt@v1.8.2:pkg/virt-api/webhooks/arm64.go:89-97).
# Functions can be sourced for testing (main runs only when executed).
set -euo pipefail

KVC_STAGE="test"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=tools.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools.sh"

# Globals every mode may read (contract 4 of the stage interface).
WORK=""
DEADLINE=0
STAGED_REF=""
USER_DATA=""
SSH_KEY=""
MODE=""
MODE_REASON=""
KVM=false
MODE_LOADED=false
CHECKS_DONE=""
PULL_NOTE=""

# parse_timeout 15m|90s|1h30m|600 -> seconds on stdout.
parse_timeout() {
  local spec="$1" total=0 rest n unit
  [[ "$spec" =~ ^([0-9]+[smh]?)+$ ]] || kvc_die "invalid KVC_TIMEOUT '$spec' (e.g. 900, 90s, 15m, 1h30m)"
  rest="$spec"
  while [ -n "$rest" ]; do
    [[ "$rest" =~ ^([0-9]+)([smh]?)(.*)$ ]]
    n=$((10#${BASH_REMATCH[1]}))
    unit="${BASH_REMATCH[2]}"
    rest="${BASH_REMATCH[3]}"
    case "$unit" in
      h) total=$((total + n * 3600)) ;;
      m) total=$((total + n * 60)) ;;
      *) total=$((total + n)) ;;
    esac
  done
  [ "$total" -gt 0 ] || kvc_die "KVC_TIMEOUT must be positive: '$spec'"
  printf '%s\n' "$total"
}

# Seconds left of the stage's budget (at least 1, so waits still poll once).
remaining() {
  local left=$((DEADLINE - $(date +%s)))
  [ "$left" -ge 1 ] || left=1
  printf '%s\n' "$left"
}

# check_names: the requested checks, validated before anything starts.
check_names() {
  local check
  local -a checks
  IFS=, read -r -a checks <<<"${KVC_CHECKS:-boot}"
  for check in "${checks[@]}"; do
    check="${check// /}"
    case "$check" in
      boot | guest-agent | ssh) printf '%s\n' "$check" ;;
      "") ;;
      *) kvc_die "unknown check '$check' (boot, guest-agent, ssh)" ;;
    esac
  done
}

# substitute FILE DEST PLACEHOLDER VALUE...: literal replacement. The values
# are quoted so bash treats '&' and '\' in them literally (patsub_replacement),
# and nothing reaches sed or eval.
substitute() {
  local src="$1" dest="$2" content
  shift 2
  content="$(<"$src")"
  while [ "$#" -ge 2 ]; do
    content="${content//"$1"/"$2"}"
    shift 2
  done
  printf '%s\n' "$content" >"$dest"
}

# ssh_tool_pinned: the ssh check is not asked for, or the pin table has the
# virtctl it needs in kubevirt mode for KVC_ARCH (KubeVirt publishes no checksum
# file, and none was found for every arch: docs/stages.md, "Pinned tools").
ssh_tool_pinned() {
  [[ ",${KVC_CHECKS:-boot}," != *,ssh,* ]] ||
    kvc_pin virtctl "${KVC_KUBEVIRT_VERSION:-}" "$KVC_ARCH" >/dev/null
}

# select_mode: MODE and MODE_REASON from KVC_TEST_MODE, KVM and the arch.
# KubeVirt never emulates arm64 (see the header), so arm64 without KVM runs
# in qemu, and forcing kubevirt there is refused before anything starts.
select_mode() {
  local requested="${KVC_TEST_MODE:-auto}" arch="${KVC_ARCH:?KVC_ARCH is required}"
  case "$requested" in
    auto | kubevirt | qemu) ;;
    *) kvc_die "invalid KVC_TEST_MODE '$requested' (auto, kubevirt, qemu)" ;;
  esac
  case "$arch" in
    amd64 | arm64) ;;
    *) kvc_die "unsupported KVC_ARCH '$arch' (amd64, arm64)" ;;
  esac
  if kvc_kvm_usable; then KVM=true; else KVM=false; fi
  local kvm_why="$KVC_KVM_REASON"
  if [ "$requested" = qemu ]; then
    MODE=qemu
    MODE_REASON="test.mode is qemu; $kvm_why"
  elif [ "$KVM" = true ] && [ "$requested" = auto ] && ! ssh_tool_pinned; then
    MODE=qemu
    MODE_REASON="KVM usable ($kvm_why), but the ssh check needs virtctl ${KVC_KUBEVIRT_VERSION:-} for $arch in kubevirt mode, which has no verified sha256 (docs/stages.md, 'Pinned tools'): qemu mode with KVM runs ssh without virtctl"
  elif [ "$KVM" = true ]; then
    MODE=kubevirt
    MODE_REASON="KVM usable: $kvm_why"
    [ "$requested" = auto ] || MODE_REASON="test.mode is kubevirt; $MODE_REASON"
  elif [ "$arch" = amd64 ]; then
    MODE=kubevirt
    MODE_REASON="no KVM ($kvm_why): KubeVirt with software emulation"
    [ "$requested" = auto ] || MODE_REASON="test.mode is kubevirt; $MODE_REASON"
  elif [ "$requested" = kubevirt ]; then
    kvc_die "test.mode is kubevirt but this arm64 runner has no usable KVM ($kvm_why), and KubeVirt cannot emulate arm64: use an arm64 runner with KVM, or test.mode auto/qemu"
  else
    MODE=qemu
    MODE_REASON="no KVM ($kvm_why) on arm64, which KubeVirt cannot emulate"
  fi
}

# pull_access: say when the staged image is pulled anonymously. Only the CI
# knows whether it is private; a private image then fails with ErrImagePull (or
# skopeo's "unauthorized") after a long wait, and this note names the cause.
pull_access() {
  [ ! -f "$KVC_STAGED_DIR/image.oci.tar" ] || return 0
  [ -z "${KVC_PULL_USER:-}" ] || [ -z "${KVC_PULL_PASSWORD:-}" ] || return 0
  PULL_NOTE="no pull credentials (KVC_PULL_USER/KVC_PULL_PASSWORD are empty): $STAGED_REF is pulled anonymously, which fails (ErrImagePull) if the image is private; give the test job read-only pull credentials or make the image public (docs/stages.md, 'Registry credentials')"
  kvc_log "$PULL_NOTE"
}

summary() {
  [ -n "${KVC_SUMMARY_FILE:-}" ] || return 0
  printf '%s\n' "$@" >>"$KVC_SUMMARY_FILE" || true
}

run_check() {
  kvc_log "check $1 ($MODE)"
  case "$1" in
    boot) mode_check_boot ;;
    guest-agent) mode_check_guest_agent ;;
    ssh) mode_check_ssh ;;
  esac
  kvc_log "check $1 passed"
  CHECKS_DONE="${CHECKS_DONE:+$CHECKS_DONE, }$1"
}

# Every exit path: logs first (the mode is still up), then tear down; neither
# may change the stage's result.
cleanup() {
  local rc=$?
  set +e
  if [ "$MODE_LOADED" = true ]; then
    mkdir -p "$KVC_LOG_DIR"
    mode_collect_logs || kvc_log "collecting logs failed (ignored)"
    mode_down || kvc_log "tearing down failed (ignored)"
  fi
  if [ "$rc" -eq 0 ]; then
    summary "- result: passed (${CHECKS_DONE:-no checks})" ""
  else
    [ -z "$PULL_NOTE" ] || kvc_log "the test failed; note: $PULL_NOTE"
    summary "- result: FAILED (passed: ${CHECKS_DONE:-none}); logs in $KVC_LOG_DIR" ""
  fi
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

main() {
  kvc_require KVC_STAGED_DIR KVC_LOG_DIR KVC_IMAGE_SLUG KVC_ARCH KVC_USER_DATA
  local -a checks
  local list timeout up_timeout check here
  list="$(check_names)"
  mapfile -t checks <<<"$list"
  timeout="$(parse_timeout "${KVC_TIMEOUT:-15m}")"
  up_timeout="$(parse_timeout "${KVC_UP_TIMEOUT:-25m}")"
  # Bringing the cluster up (kind, KubeVirt, image pulls) has its own budget:
  # emulated KubeVirt on a small runner can take most of 15m to come up, and
  # test.timeout is what the boot and the checks may take once it is up.
  DEADLINE=$(($(date +%s) + up_timeout))
  [ -f "$KVC_STAGED_DIR/ref" ] || kvc_die "no staged image at $KVC_STAGED_DIR/ref"
  [ -f "$KVC_USER_DATA" ] || kvc_die "no cloud-init user-data at $KVC_USER_DATA"
  STAGED_REF="$(head -n1 "$KVC_STAGED_DIR/ref")"
  pull_access
  select_mode
  kvc_log "mode: $MODE ($MODE_REASON)"
  summary "### kvc test: $KVC_IMAGE_SLUG ($KVC_ARCH)" "" "- mode: **$MODE** ($MODE_REASON)" \
    "- image: \`$STAGED_REF\`"
  kvc_ensure_tools ssh-keygen:openssh-client ssh:openssh-client base64:coreutils curl:curl
  here="$(dirname "${BASH_SOURCE[0]}")"
  # shellcheck source-path=SCRIPTDIR source=test-kubevirt.sh
  . "$here/test-$MODE.sh"
  mkdir -p "$KVC_LOG_DIR"
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  MODE_LOADED=true
  SSH_KEY="$WORK/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C kvc-test -f "$SSH_KEY"
  USER_DATA="$WORK/user-data"
  substitute "$KVC_USER_DATA" "$USER_DATA" __KVC_SSH_PUBKEY__ "$(<"$SSH_KEY.pub")"
  cp "$USER_DATA" "$KVC_LOG_DIR/user-data"
  mode_up
  DEADLINE=$(($(date +%s) + timeout))
  mode_boot
  for check in "${checks[@]}"; do
    [ -n "$check" ] || continue
    run_check "$check"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
