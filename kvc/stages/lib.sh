# shellcheck shell=bash
# Shared helpers for kvc stage scripts (sourced, never executed).
#
# Every stage receives its inputs as KVC_* environment variables (see
# docs/stages.md). Values from the spec may contain anything, so helpers here
# never eval them or splice them into shell text: they travel as single argv
# elements or through the environment.

# Functions whose output is captured with $(...) must still stop at the first
# failing command; bash does not propagate errexit there by default.
shopt -s inherit_errexit

# Log to stderr so stdout stays usable for values a function returns.
kvc_log() {
  printf '[kvc %s] %s\n' "${KVC_STAGE:-stage}" "$*" >&2
}

kvc_die() {
  printf '[kvc %s] ERROR: %s\n' "${KVC_STAGE:-stage}" "$*" >&2
  exit 1
}

# kvc_bool NAME: true when the variable NAME is "true" (contract booleans are
# the strings true/false; anything else, including unset, is false).
kvc_bool() {
  [ "${!1:-}" = "true" ]
}

# kvc_retry ATTEMPTS DELAY CMD...: transient network failures are the common
# cause of red CI, so network steps get a few attempts before failing.
kvc_retry() {
  local attempts="$1" delay="$2" n=1
  shift 2
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then
      kvc_log "giving up after $n attempts: $1"
      return 1
    fi
    kvc_log "attempt $n failed, retrying in ${delay}s: $1"
    sleep "$delay"
    n=$((n + 1))
  done
}

# Run a command as root: CI runners are usually a sudo-capable user,
# containers are usually root without sudo.
kvc_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# Only install packages on CI (or when asked): on a developer machine a
# missing tool is reported instead of silently changing the system.
kvc_may_install() {
  [ "${CI:-}" = "true" ] || kvc_bool KVC_AUTO_INSTALL
}

# kvc_ensure_tools TOOL:PACKAGE...: make sure each TOOL is on PATH,
# installing the Debian/Ubuntu PACKAGE in one apt-get call when allowed.
kvc_ensure_tools() {
  local spec tool pkg
  local -a missing=() packages=()
  for spec in "$@"; do
    tool="${spec%%:*}"
    pkg="${spec#*:}"
    if ! command -v "$tool" >/dev/null 2>&1; then
      missing+=("$tool")
      packages+=("$pkg")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! kvc_may_install || ! command -v apt-get >/dev/null 2>&1; then
    kvc_die "missing tools: ${missing[*]} (install packages: ${packages[*]}, or run scripts/install-integration-deps.sh)"
  fi
  kvc_log "installing ${packages[*]} for ${missing[*]}"
  kvc_retry 3 10 kvc_as_root apt-get update -q
  kvc_retry 3 10 kvc_as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${packages[@]}"
}

# The qemu system emulator for this machine's architecture.
kvc_qemu_system() {
  case "$(uname -m)" in
    x86_64) echo qemu-system-x86_64 ;;
    aarch64 | arm64) echo qemu-system-aarch64 ;;
    *) echo "qemu-system-$(uname -m)" ;;
  esac
}

# kvc_kvm_usable: /dev/kvm can exist and still be useless (nested VMs where
# the vCPU never runs; udev rules missing on hosted runners). Existence is not
# enough, so boot a real kernel under KVM with a short timeout: with working
# KVM it panics (no root fs) and exits in about a second; a broken KVM hangs
# and the timeout ends it. Anything we cannot probe counts as unusable:
# emulation is slow but always works. KVC_FORCE_TCG=true skips the probe.
kvc_kvm_usable() {
  local qemu kernel machine
  kvc_bool KVC_FORCE_TCG && return 1
  [ -e /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  qemu="$(kvc_qemu_system)"
  command -v "$qemu" >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1 || return 1
  kernel="$(find /boot -maxdepth 1 -name 'vmlinuz-*' -readable 2>/dev/null | sort | tail -n1)"
  [ -n "$kernel" ] || return 1
  machine=pc
  [ "$qemu" = qemu-system-aarch64 ] && machine=virt
  timeout "${KVC_KVM_PROBE_TIMEOUT:-20}" "$qemu" -accel kvm -machine "$machine" -cpu host \
    -m 256 -display none -nodefaults -monitor none -serial none -no-reboot \
    -kernel "$kernel" -append "panic=-1 quiet" </dev/null >/dev/null 2>&1
}

# Configure libguestfs for this machine: the direct backend (no libvirtd on
# CI runners) and TCG when KVM is absent or unusable (otherwise every
# libguestfs call hangs). Ubuntu ships kernels readable by root only, which
# breaks the appliance build for non-root users.
kvc_setup_libguestfs() {
  export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
  if kvc_kvm_usable; then
    kvc_log "KVM is usable: libguestfs uses hardware acceleration"
  else
    kvc_log "KVM missing or unusable: libguestfs falls back to software emulation (TCG)"
    export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
  fi
  if [ "$(id -u)" -ne 0 ] && [ -n "$(find /boot -maxdepth 1 -name 'vmlinuz-*' ! -readable 2>/dev/null)" ]; then
    kvc_as_root chmod 0644 /boot/vmlinuz-* || kvc_log "cannot make /boot/vmlinuz-* readable"
  fi
}

# The run id that names staging tags: unique per CI run, "local" otherwise.
kvc_run_id() {
  printf '%s\n' "${KVC_RUN_ID:-${GITHUB_RUN_ID:-${CIRCLE_WORKFLOW_ID:-local}}}"
}

# kvc_staging_tag: the tag containerize pushes and test/publish read back.
kvc_staging_tag() {
  printf 'kvc-staging-%s-%s\n' "${KVC_IMAGE_SLUG:?KVC_IMAGE_SLUG is required}" "$(kvc_run_id)"
}

# The registry host of an image reference (Docker Hub when the first path
# component does not look like a host), for docker login.
kvc_registry_host() {
  local first="${1%%/*}"
  case "$first" in
    *.* | *:* | localhost) printf '%s\n' "$first" ;;
    *) printf '%s\n' docker.io ;;
  esac
}

# kvc_require VAR...: fail early, naming every missing input at once.
kvc_require() {
  local name
  local -a missing=()
  for name in "$@"; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  [ "${#missing[@]}" -eq 0 ] || kvc_die "required variables are empty: ${missing[*]}"
}
