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

# kvc_bool NAME [DEFAULT]: the one parser of contract booleans. The variable
# NAME holds the string true or false; unset or empty means DEFAULT (false when
# not given). Anything else is a mistake worth stopping for: treating "True" or
# "yes" as false would silently skip a step the spec asked for.
kvc_bool() {
  local value="${!1:-${2:-false}}"
  case "$value" in
    true) return 0 ;;
    false) return 1 ;;
    *) kvc_die "$1 must be true or false, not '$value'" ;;
  esac
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

# kvc_poll_until WHAT INTERVAL PROBE [ARG...]: run PROBE every INTERVAL seconds
# until it succeeds, for as long as the caller's DEADLINE (epoch seconds, a
# global of the test driver) allows. PROBE returns 0 (done),
# 1 (not yet) or anything else (give up now: qemu exited, say), which
# kvc_poll_until returns; each PROBE call must itself be bounded in time. Returns
# 1 at the deadline. The one poll loop of every mode: while it waits it logs a
# line at least every KVC_HEARTBEAT seconds (default 60), because CircleCI ends
# a step that prints nothing for its no_output_timeout
# (circleci/circleci-docs@9734a14:docs/reference/modules/ROOT/pages/
# configuration-reference.adoc:1658-1661) and a slow boot must not look hung.
kvc_poll_until() {
  local what="$1" interval="$2" rc now last
  shift 2
  last="$(date +%s)"
  while :; do
    rc=0
    "$@" || rc=$?
    [ "$rc" -ne 0 ] || return 0
    [ "$rc" -eq 1 ] || return "$rc"
    now="$(date +%s)"
    if [ "$now" -ge "$DEADLINE" ]; then
      kvc_log "gave up waiting for $what: the test timeout is over"
      return 1
    fi
    if [ $((now - last)) -ge "${KVC_HEARTBEAT:-60}" ]; then
      kvc_log "still waiting for $what ($((DEADLINE - now))s left)"
      last="$now"
    fi
    sleep "$interval"
  done
}

# kvc_boot_marker: whether the console log on stdin proves the boot (contract
# 4), in every test mode: a line that is exactly kvc-boot-ok, written by the
# user-data's runcmd (an echo of the command, or a longer word, does not
# count). Carriage returns split lines too, so a marker written after a
# progress line still counts. grep -c reads all its input: an early exit
# (grep -q) would cut the writer off, and under pipefail turn a match into a
# failure.
kvc_boot_marker() {
  local count
  count="$(tr '\r' '\n' | grep -Ec '^kvc-boot-ok[[:space:]]*$')" || true
  [ "${count:-0}" -gt 0 ]
}

# kvc_poll_slice: the seconds one blocking wait inside a poll may take: at most
# 30, so heartbeats keep coming, and never past the deadline.
kvc_poll_slice() {
  local left=$((DEADLINE - $(date +%s)))
  [ "$left" -ge 1 ] || left=1
  [ "$left" -le 30 ] || left=30
  printf '%s\n' "$left"
}

# kvc_first_match PREDICATE CANDIDATE...: print the first CANDIDATE for which
# `PREDICATE CANDIDATE` succeeds; return 1 when none does. The one shape of the
# "first of these paths that qualifies" lookups (supermin's kernel, the
# libguestfs appliance), each with its own predicate.
kvc_first_match() {
  local predicate="$1" candidate
  shift
  for candidate in "$@"; do
    if "$predicate" "$candidate"; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
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

# kvc_apt_install PACKAGE...: the one place that installs Debian/Ubuntu
# packages. Without recommends, so every package a stage relies on must be
# named (libguestfs-xfs, for one, is only recommended by libguestfs-tools).
# ca-certificates is one of them: curl, skopeo and docker.io only recommend it
# and a bare Ubuntu container (GitLab's job image) has none: its package list
# goes from bzip2 to cdebconf (docker-library/repo-info@e31f5d5b827f:
# repos/ubuntu/local/24.04.md:174-194), so every TLS client would fail with an
# unknown-authority error. KVC_CA_BUNDLE (tests) is the bundle looked for.
kvc_apt_install() {
  [ "$#" -gt 0 ] || return 0
  [ -e "${KVC_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" ] || set -- ca-certificates "$@"
  kvc_log "installing $*"
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" kvc_as_root apt-get update -q
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" kvc_as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@"
}

# kvc_can_apt: installing is allowed here and apt-get exists.
kvc_can_apt() {
  kvc_may_install && command -v apt-get >/dev/null 2>&1
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
  kvc_can_apt ||
    kvc_die "missing tools: ${missing[*]} (install packages: ${packages[*]}, or run scripts/install-integration-deps.sh)"
  kvc_apt_install "${packages[@]}"
}

# kvc_package_installed PACKAGE: dpkg knows it as installed.
kvc_package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# kvc_ensure_packages PACKAGE...: packages that provide no command of their
# own (filesystem support, appliance helpers). Installed when allowed; on a
# developer machine or a non-Debian system a missing one is only reported,
# because most images build without it.
kvc_ensure_packages() {
  local pkg
  local -a missing=()
  command -v dpkg-query >/dev/null 2>&1 || {
    kvc_log "not a Debian/Ubuntu system: make sure these are installed: $*"
    return 0
  }
  for pkg in "$@"; do
    kvc_package_installed "$pkg" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! kvc_can_apt; then
    kvc_log "WARNING: packages not installed: ${missing[*]} (set KVC_AUTO_INSTALL=true to install them)"
    return 0
  fi
  kvc_apt_install "${missing[@]}"
}

# kvc_apt_known PACKAGE: the configured archives offer PACKAGE (after an
# apt-get update), for packages that exist in some releases only.
kvc_apt_known() {
  apt-cache policy "$1" 2>/dev/null | grep -Eq '^ *Candidate: [^(]'
}

# kvc_login TOOL HOST USER_VAR PASSWORD_VAR [OPTION...]: log TOOL (docker,
# skopeo: both take these flags) in to HOST with the credentials held in the
# two named variables, the password on stdin, never on a command line. OPTIONs
# go before the host (e.g. skopeo's --tls-verify=false). Without both values
# nothing happens: the registry may be public, or a CI step may have logged
# in already.
kvc_login() {
  local tool="$1" host="$2" names="$3/$4" user="${!3:-}" password="${!4:-}"
  shift 4
  if [ -z "$user" ] || [ -z "$password" ]; then
    kvc_log "no credentials in $names: not logging in to $host"
    return 0
  fi
  kvc_log "logging in to $host as $user"
  printf '%s' "$password" | "$tool" login "$@" --username "$user" --password-stdin "$host"
}

# The qemu system emulator for this machine's architecture.
kvc_qemu_system() {
  case "$(uname -m)" in
    x86_64) echo qemu-system-x86_64 ;;
    aarch64 | arm64) echo qemu-system-aarch64 ;;
    *) echo "qemu-system-$(uname -m)" ;;
  esac
}

# --- KVM detection (owned by the test stage; build.sh uses it for libguestfs) --
#
# KubeVirt's own e2e setup decides between KVM and emulation from the kvm
# module's nested parameter (kubevirt/kubevirt.core@2.3.0:hack/e2e-setup.sh:
# 215-236). That parameter says whether this kernel lets its guests use
# virtualization; it does not say whether /dev/kvm works here (hosted runners
# ship /dev/kvm readable by root only, and nested VMs exist whose vCPU never
# runs). So kvc asks in order: is there a /dev/kvm, can this user open it
# (granting it with a udev rule when sudo works), and does a real kernel boot
# under KVM? The nested parameter decides only when the boot probe cannot run.
# KVC_KVM_REASON says which answer was found, for the job log and summary.
KVC_KVM_REASON=""

# The device and module paths (tests point them at fixtures).
kvc_kvm_device() { printf '%s\n' "${KVC_KVM_DEVICE:-/dev/kvm}"; }

kvc_kvm_accessible() {
  local dev
  dev="$(kvc_kvm_device)"
  [ -r "$dev" ] && [ -w "$dev" ]
}

# kvc_kvm_grant: hosted runners create /dev/kvm as root:kvm 0660 and the
# runner user is not in the kvm group. A udev rule making it 0666, then a
# trigger, fixes that without a new login session. Only when sudo works
# without a password (or we are root): never prompt.
kvc_kvm_grant() {
  local rules="${KVC_UDEV_RULES_DIR:-/etc/udev/rules.d}/99-kvc-kvm.rules"
  if [ "$(id -u)" -ne 0 ] && ! sudo -n true >/dev/null 2>&1; then
    return 1
  fi
  kvc_log "making $(kvc_kvm_device) usable for $(id -un) with a udev rule ($rules)"
  printf '%s\n' 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' |
    kvc_as_root tee "$rules" >/dev/null || return 1
  kvc_as_root udevadm control --reload-rules || return 1
  kvc_as_root udevadm trigger --name-match=kvm || return 1
  kvc_as_root udevadm settle >/dev/null 2>&1 || true
}

# The kvm module's nested parameter, as KubeVirt's CI reads it ("unknown"
# when no such module is loaded, e.g. on arm64).
kvc_kvm_nested() {
  local sys="${KVC_KVM_SYSFS:-/sys/module}" module
  for module in kvm_intel kvm_amd; do
    if [ -r "$sys/$module/parameters/nested" ]; then
      cat "$sys/$module/parameters/nested"
      return 0
    fi
  done
  printf 'unknown\n'
}

# Ubuntu ships kernels readable by root only; the boot probe and the
# libguestfs appliance both need one, so fix that before either runs.
kvc_readable_kernel() {
  if [ "$(id -u)" -ne 0 ] && [ -n "$(find /boot -maxdepth 1 -name 'vmlinuz-*' ! -readable 2>/dev/null)" ]; then
    kvc_as_root chmod 0644 /boot/vmlinuz-* || kvc_log "cannot make /boot/vmlinuz-* readable"
  fi
}

# kvc_kvm_probe: boot the host's kernel under KVM with a short timeout: with
# working KVM it panics (no root fs) and exits in about a second; a broken
# KVM hangs and the timeout ends it. Returns 2 when the probe cannot run.
kvc_kvm_probe() {
  local qemu kernel machine package
  qemu="$(kvc_qemu_system)"
  if ! command -v "$qemu" >/dev/null 2>&1; then
    package="qemu-system-x86"
    [ "$qemu" = qemu-system-aarch64 ] && package="qemu-system-arm"
    if kvc_may_install && command -v apt-get >/dev/null 2>&1; then
      kvc_ensure_tools "$qemu:$package" || return 2
    else
      return 2
    fi
  fi
  command -v timeout >/dev/null 2>&1 || return 2
  kvc_readable_kernel
  kernel="$(find /boot -maxdepth 1 -name 'vmlinuz-*' -readable 2>/dev/null | sort | tail -n1)"
  [ -n "$kernel" ] || return 2
  machine=pc
  [ "$qemu" = qemu-system-aarch64 ] && machine=virt
  timeout "${KVC_KVM_PROBE_TIMEOUT:-20}" "$qemu" -accel kvm -machine "$machine" -cpu host \
    -m 256 -display none -nodefaults -monitor none -serial none -no-reboot \
    -kernel "$kernel" -append "panic=-1 quiet" </dev/null >/dev/null 2>&1
}

# kvc_kvm_usable: true when VMs can use KVM here; KVC_KVM_REASON says why or
# why not. KVC_FORCE_TCG=true answers no without looking.
kvc_kvm_usable() {
  local dev nested rc=0
  dev="$(kvc_kvm_device)"
  if kvc_bool KVC_FORCE_TCG; then
    KVC_KVM_REASON="KVC_FORCE_TCG=true"
    return 1
  fi
  if [ ! -e "$dev" ]; then
    KVC_KVM_REASON="$dev does not exist"
    return 1
  fi
  kvc_kvm_accessible || kvc_kvm_grant || true
  if ! kvc_kvm_accessible; then
    KVC_KVM_REASON="$dev exists but $(id -un) cannot open it (and no sudo to add a udev rule)"
    return 1
  fi
  nested="$(kvc_kvm_nested)"
  kvc_kvm_probe || rc=$?
  case "$rc" in
    0) KVC_KVM_REASON="$dev is usable: a kernel booted under KVM (kvm nested=$nested)" ;;
    2)
      case "$nested" in
        1 | Y | y) KVC_KVM_REASON="$dev is accessible and kvm nested=$nested (boot probe unavailable)" ;;
        *) KVC_KVM_REASON="$dev is accessible but the boot probe cannot run and kvm nested=$nested"
           return 1 ;;
      esac
      ;;
    *) KVC_KVM_REASON="$dev is accessible but a kernel did not boot under KVM (kvm nested=$nested)"
       return 1 ;;
  esac
}

# Configure libguestfs for this machine: the direct backend (no libvirtd on
# CI runners) and TCG when KVM is absent or unusable (otherwise every
# libguestfs call hangs). The kernel is made readable before the KVM probe.
kvc_setup_libguestfs() {
  export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
  kvc_readable_kernel
  if kvc_kvm_usable; then
    kvc_log "KVM is usable ($KVC_KVM_REASON): libguestfs uses hardware acceleration"
  else
    kvc_log "KVM unusable ($KVC_KVM_REASON): libguestfs falls back to software emulation (TCG)"
    export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
  fi
}

# kvc_fetch_pinned NAME VERSION ARCH DEST: download a file listed in the pin
# table (tools.sh) and keep it only if its sha256 is the pinned one. Nothing
# without a row is downloaded: the stage fails closed, naming what is missing.
# kvc_pin NAME VERSION ARCH: "URL SHA256" of the pin table's row, or status 1.
kvc_pin() {
  local name="$1" version="$2" arch="$3" row found=""
  local -a f
  # The caller sources tools.sh (test.sh does): lib.sh itself sources nothing,
  # so the build fingerprint, which hashes what the build stage reads, need not
  # change when a test tool is bumped.
  [ -n "${KVC_TOOL_PINS+set}" ] || kvc_die "kvc_pin needs tools.sh sourced first"
  for row in "${KVC_TOOL_PINS[@]}"; do
    read -r -a f <<<"$row"
    if [ "${f[0]}" = "$name" ] && [ "${f[1]}" = "$version" ] &&
      { [ "${f[2]}" = "$arch" ] || [ "${f[2]}" = any ]; }; then
      found="${f[3]} ${f[4]}"
    fi
  done
  [ -n "$found" ] || return 1
  printf '%s\n' "$found"
}

kvc_fetch_pinned() {
  local name="$1" version="$2" arch="$3" dest="$4" pin="" url="" sum="" actual
  pin="$(kvc_pin "$name" "$version" "$arch")" || true
  url="${pin%% *}"
  sum="${pin#* }"
  [ -n "$url" ] || kvc_die "no pinned sha256 for $name $version ($arch) in .kvc/stages/tools.sh: kvc downloads only verified files (see docs/stages.md, 'Pinned tools')"
  kvc_log "downloading $name $version ($arch)"
  kvc_retry 3 "${KVC_RETRY_DELAY:-5}" curl --fail --location --silent --show-error \
    --output "$dest.part" -- "$url" || kvc_die "cannot download $url"
  actual="$(sha256sum "$dest.part")"
  actual="${actual%% *}"
  if [ "$actual" != "$sum" ]; then
    rm -f "$dest.part"
    kvc_die "sha256 mismatch for $url: got $actual, pinned $sum"
  fi
  mv -f "$dest.part" "$dest"
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
