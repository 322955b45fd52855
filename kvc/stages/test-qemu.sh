# shellcheck shell=bash
# kvc test mode "qemu": boot the staged containerDisk with qemu-system
# directly, no Kubernetes and no Docker engine. The driver (lib.sh) sources
# lib.sh and this file and calls, in order: mode_up, mode_boot, each
# mode_check_<check>, then on every exit path mode_collect_logs and mode_down
# (docs/stages.md, "Test modes"). It provides WORK, DEADLINE, remaining,
# STAGED_REF, USER_DATA, SSH_KEY, KVC_LOG_DIR and KVC_ARCH.
#
# The disk comes out of the staged image itself: from the OCI archive
# containerize exported, or from the registry by the staged digest. It boots
# with a NoCloud seed holding the same user-data the KubeVirt mode uses, the
# serial console in a log file, the guest agent on a virtio-serial port
# (org.qemu.guest_agent.0, as KubeVirt wires it) and ssh on a forwarded port.
#
# Knobs (environment): KVC_QEMU_MEMORY (MiB, default 2048), KVC_QEMU_CPUS
# (default 2), KVC_PULL_USER/KVC_PULL_PASSWORD (optional pull credentials),
# KVC_REGISTRY_INSECURE=true (plain-http registry, for local tests),
# KVC_SSH_USER (default kvc).

QEMU_PID=""
QEMU_PORT=""
QEMU_DISK=""
QEMU_CONSOLE=""
QEMU_QGA=""
QEMU_ACCEL=""

# The Debian/Ubuntu package of each command this mode runs.
qemu_tools() {
  local system
  case "${KVC_ARCH:?}" in
    amd64) system=qemu-system-x86_64:qemu-system-x86 ;;
    arm64) system=qemu-system-aarch64:qemu-system-arm ;;
    *) kvc_die "qemu mode: unsupported KVC_ARCH '$KVC_ARCH' (amd64, arm64)" ;;
  esac
  printf '%s\n' "$system" qemu-img:qemu-utils genisoimage:genisoimage socat:socat \
    ssh:openssh-client tar:tar
  # skopeo picks this arch's manifest, from the registry or from the archive:
  # BuildKit's OCI archive holds a nested multi-platform index whose top level
  # names no platform, so tar alone could pick the other arch's disk.
  printf '%s\n' skopeo:skopeo
}

# UEFI firmware for qemu-system-aarch64 -machine virt, from Debian's and
# Ubuntu's qemu-efi-aarch64 package (dpkg -L qemu-efi-aarch64 on Debian 12,
# 2022.11-6+deb12u2: /usr/share/AAVMF/AAVMF_CODE.fd and AAVMF_VARS.fd, the
# 64 MiB pflash images, and /usr/share/qemu-efi-aarch64/QEMU_EFI.fd, the same
# firmware as a -bios image). KVC_QEMU_EFI_CODE overrides the path.
AAVMF_CODE="${KVC_QEMU_EFI_CODE:-/usr/share/AAVMF/AAVMF_CODE.fd}"
AAVMF_VARS="${KVC_QEMU_EFI_VARS:-/usr/share/AAVMF/AAVMF_VARS.fd}"
QEMU_EFI_BIOS="/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"

guest_is_host_arch() {
  case "$(uname -m):$KVC_ARCH" in
    x86_64:amd64 | aarch64:arm64 | arm64:arm64) return 0 ;;
    *) return 1 ;;
  esac
}

mode_up() {
  local list
  local -a tools
  list="$(qemu_tools)"
  mapfile -t tools <<<"$list"
  kvc_ensure_tools "${tools[@]}"
  if [ "$KVC_ARCH" = arm64 ] && [ ! -f "$AAVMF_CODE" ] && [ ! -f "$QEMU_EFI_BIOS" ]; then
    kvc_can_apt || kvc_die "no UEFI firmware for arm64 at $AAVMF_CODE (install qemu-efi-aarch64)"
    kvc_apt_install qemu-efi-aarch64
  fi
  QEMU_ACCEL=tcg
  # KVM runs guests of the host's own architecture only.
  if guest_is_host_arch && { [ "${KVM:-}" = true ] || { [ -z "${KVM:-}" ] && kvc_kvm_usable; }; }; then
    QEMU_ACCEL=kvm
  fi
  kvc_log "qemu mode: $KVC_ARCH guest with ${QEMU_ACCEL^^}"
}

# --- the disk out of the staged image ---------------------------------------

# Unpack the layer that holds disk/disk.qcow2 from an OCI image layout in DIR
# into DEST. A containerDisk has one file in one layer, so rather than parse
# JSON, every blob of the single-platform copy is tried as a (compressed)
# tar; GNU tar detects gzip/zstd by itself when reading a file.
disk_from_layout() {
  local dir="$1" dest="$2" blob
  for blob in "$dir"/blobs/sha256/*; do
    if tar -tf "$blob" 2>/dev/null | grep -qx '\(\./\)\?disk/disk\.qcow2'; then
      mkdir -p "$WORK/layer"
      tar -xf "$blob" -C "$WORK/layer" --wildcards '*disk/disk.qcow2'
      mv -f "$WORK/layer/disk/disk.qcow2" "$dest"
      rm -rf "$WORK/layer"
      return 0
    fi
  done
  kvc_die "no layer with disk/disk.qcow2 in the staged image for $KVC_ARCH"
}

# Copy the staged image's KVC_ARCH manifest into an OCI layout with skopeo:
# `--override-arch` picks that platform's manifest from the index.
skopeo_copy() {
  local src="$1" dest="$2"
  local -a args=(copy --quiet --override-os linux --override-arch "$KVC_ARCH")
  if [[ "$src" == docker://* ]]; then
    kvc_bool KVC_REGISTRY_INSECURE && args+=(--src-tls-verify=false)
    export REGISTRY_AUTH_FILE="$WORK/auth.json"
    local -a options=()
    kvc_bool KVC_REGISTRY_INSECURE && options+=(--tls-verify=false)
    kvc_login skopeo "$(kvc_registry_host "${src#docker://}")" KVC_PULL_USER KVC_PULL_PASSWORD \
      "${options[@]}"
  fi
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" skopeo "${args[@]}" "$src" "oci:$dest"
}

# Without skopeo, a Docker engine can pull the platform and copy the file out.
docker_copy() {
  local ref="$1" dest="$2" container
  kvc_login docker "$(kvc_registry_host "$ref")" KVC_PULL_USER KVC_PULL_PASSWORD
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" docker pull --quiet --platform "linux/$KVC_ARCH" "$ref" >&2
  container="$(docker create --platform "linux/$KVC_ARCH" "$ref" /none)"
  docker cp "$container:/disk/disk.qcow2" "$dest" >&2
  docker rm "$container" >/dev/null
}

# The OCI archive's index may list several platforms; pick ours. skopeo
# does that; without it, the archive is unpacked and every blob tried, which
# is right only for a single-platform archive, so that is checked first.
disk_from_archive() {
  local archive="$1" dest="$2" layout="$WORK/oci"
  if command -v skopeo >/dev/null 2>&1; then
    skopeo_copy "oci-archive:$archive" "$layout"
  else
    mkdir -p "$layout"
    tar -xf "$archive" -C "$layout"
    [ "$(grep -o '"platform"' "$layout/index.json" | wc -l)" -le 1 ] ||
      kvc_die "multi-platform archive needs skopeo to choose $KVC_ARCH (install skopeo)"
  fi
  disk_from_layout "$layout" "$dest"
  rm -rf "$layout"
}

# QEMU_DISK: the staged disk for KVC_ARCH, a scratch copy qemu may write to.
fetch_disk() {
  QEMU_DISK="$WORK/disk.qcow2"
  if [ -f "$KVC_STAGED_DIR/image.oci.tar" ]; then
    kvc_log "disk from the OCI archive $KVC_STAGED_DIR/image.oci.tar"
    disk_from_archive "$KVC_STAGED_DIR/image.oci.tar" "$QEMU_DISK"
  elif command -v skopeo >/dev/null 2>&1; then
    kvc_log "disk from the registry: $STAGED_REF"
    skopeo_copy "docker://$STAGED_REF" "$WORK/oci"
    disk_from_layout "$WORK/oci" "$QEMU_DISK"
    rm -rf "$WORK/oci"
  else
    kvc_log "disk from the registry with docker: $STAGED_REF"
    docker_copy "$STAGED_REF" "$QEMU_DISK"
  fi
}

# --- boot --------------------------------------------------------------------

# A NoCloud seed (volume label cidata) with the driver's user-data: the same
# cloud-init input the KubeVirt mode passes, so both modes boot alike.
make_seed() {
  mkdir -p "$WORK/seed"
  cp "$USER_DATA" "$WORK/seed/user-data"
  printf 'instance-id: kvc-test\nlocal-hostname: kvc-test\n' >"$WORK/seed/meta-data"
  genisoimage -quiet -output "$WORK/seed.iso" -volid cidata -joliet -rock \
    "$WORK/seed/user-data" "$WORK/seed/meta-data"
}

# A TCP port on 127.0.0.1 nobody listens on (bash's /dev/tcp connects or not).
free_port() {
  local port tries
  for tries in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
    : "$tries"
  done
  kvc_die "no free TCP port found for ssh forwarding"
}

# The machine: arch, accelerator, CPU and firmware.
qemu_machine_args() {
  local cpu=max
  [ "$QEMU_ACCEL" = kvm ] && cpu=host
  case "$KVC_ARCH" in
    amd64)
      printf '%s\n' qemu-system-x86_64 -machine "q35,accel=$QEMU_ACCEL" -cpu "$cpu"
      ;;
    arm64)
      # UEFI as KubeVirt boots arm64 guests. gic-version=max: the newest GIC
      # the accelerator offers (KVM hosts without GICv2 emulation need v3).
      printf '%s\n' qemu-system-aarch64 -machine "virt,accel=$QEMU_ACCEL,gic-version=max" \
        -cpu "$cpu"
      if [ -f "$AAVMF_CODE" ]; then
        cp "$AAVMF_VARS" "$WORK/efivars.fd"
        printf '%s\n' -drive "if=pflash,format=raw,readonly=on,file=$AAVMF_CODE" \
          -drive "if=pflash,format=raw,file=$WORK/efivars.fd"
      else
        printf '%s\n' -bios "$QEMU_EFI_BIOS"
      fi
      ;;
  esac
}

mode_boot() {
  local list
  local -a cmd
  mkdir -p "$KVC_LOG_DIR"
  fetch_disk
  make_seed
  QEMU_PORT="$(free_port)"
  QEMU_CONSOLE="$KVC_LOG_DIR/console.log"
  QEMU_QGA="$WORK/qga.sock"
  : >"$QEMU_CONSOLE"
  list="$(qemu_machine_args)"
  mapfile -t cmd <<<"$list"
  cmd+=(-m "${KVC_QEMU_MEMORY:-2048}" -smp "${KVC_QEMU_CPUS:-2}"
    -nodefaults -display none -no-user-config
    -serial "file:$QEMU_CONSOLE"
    -drive "file=$QEMU_DISK,if=virtio,format=qcow2"
    -drive "file=$WORK/seed.iso,if=virtio,format=raw,readonly=on"
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$QEMU_PORT-:22"
    -device "virtio-net-pci,netdev=net0"
    -device virtio-serial-pci
    -chardev "socket,id=qga0,path=$QEMU_QGA,server=on,wait=off"
    -device "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"
    -device virtio-rng-pci)
  printf '%q ' "${cmd[@]}" >"$KVC_LOG_DIR/qemu-command.txt"
  kvc_log "booting $KVC_ARCH ($QEMU_ACCEL), console in $QEMU_CONSOLE, ssh on 127.0.0.1:$QEMU_PORT"
  "${cmd[@]}" </dev/null >"$KVC_LOG_DIR/qemu.log" 2>&1 &
  QEMU_PID=$!
}

qemu_running() {
  [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null
}

# The boot proof (contract 4): kvc_boot_marker (lib.sh), as in kubevirt mode.
console_has_marker() {
  kvc_boot_marker <"$QEMU_CONSOLE"
}

# Probes for kvc_poll_until (lib.sh): 0 done, 1 not yet, 2 qemu is gone (no
# point waiting longer).
qemu_alive() {
  qemu_running && return 1
  kvc_log "qemu is not running (see qemu.log)"
  return 2
}

qemu_booted() {
  console_has_marker && return 0
  qemu_running && return 1
  kvc_log "qemu exited before the guest booted (see qemu.log)"
  return 2
}

mode_check_boot() {
  local rc=0
  kvc_log "check boot: waiting for kvc-boot-ok on the serial console"
  kvc_poll_until "kvc-boot-ok on the serial console" "${KVC_POLL_INTERVAL:-2}" qemu_booted || rc=$?
  case "$rc" in
    0) kvc_log "check boot passed" ;;
    1) kvc_log "no kvc-boot-ok on the console before the deadline" ;;
  esac
  return "$rc"
}

# One guest-ping over the agent's socket; the agent answers {"return": {}}.
# socat's -t bounds the wait for an answer when the agent is not up yet.
guest_ping() {
  local out
  out="$(printf '{"execute":"guest-ping"}\n' |
    timeout 15 socat -t 5 - "UNIX-CONNECT:$QEMU_QGA" 2>/dev/null)" || true
  [[ "$out" == *'"return"'* ]] && return 0
  qemu_alive
}

mode_check_guest_agent() {
  local rc=0
  kvc_log "check guest-agent: guest-ping over virtio-serial org.qemu.guest_agent.0"
  kvc_poll_until "the guest agent" "${KVC_POLL_INTERVAL:-3}" guest_ping || rc=$?
  case "$rc" in
    0) kvc_log "check guest-agent passed" ;;
    1) kvc_log "the guest agent did not answer before the deadline" ;;
  esac
  return "$rc"
}

QEMU_SSH_OUT=""

# One ssh attempt, bounded by timeout and ConnectTimeout.
qemu_ssh_ok() {
  if QEMU_SSH_OUT="$(timeout 60 ssh -i "$SSH_KEY" -p "$QEMU_PORT" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=10 -o LogLevel=ERROR \
    "${KVC_SSH_USER:-kvc}@127.0.0.1" echo kvc-ssh-ok 2>&1)" &&
    [[ "$QEMU_SSH_OUT" == *kvc-ssh-ok* ]]; then
    return 0
  fi
  qemu_alive
}

mode_check_ssh() {
  local rc=0
  kvc_log "check ssh: running a command as ${KVC_SSH_USER:-kvc} on 127.0.0.1:$QEMU_PORT"
  QEMU_SSH_OUT=""
  kvc_poll_until "ssh into the guest" "${KVC_POLL_INTERVAL:-5}" qemu_ssh_ok || rc=$?
  case "$rc" in
    0) kvc_log "check ssh passed" ;;
    1) kvc_log "ssh output: $QEMU_SSH_OUT" ;;
  esac
  return "$rc"
}

# The console log is already in KVC_LOG_DIR; add what qemu said. Never fails.
mode_collect_logs() {
  mkdir -p "$KVC_LOG_DIR" 2>/dev/null || return 0
  if [ -n "$QEMU_CONSOLE" ] && [ -f "$QEMU_CONSOLE" ]; then
    kvc_log "last console lines:"
    tail -n 20 "$QEMU_CONSOLE" >&2 || true
  fi
  return 0
}

# Stop qemu: a polite quit first, then kill. Never fails.
mode_down() {
  local i
  if qemu_running; then
    kill "$QEMU_PID" 2>/dev/null || true
    for i in 1 2 3 4 5 6 7 8 9 10; do
      qemu_running || break
      sleep 0.5
      : "$i"
    done
    qemu_running && kill -9 "$QEMU_PID" 2>/dev/null
    wait "$QEMU_PID" 2>/dev/null || true
  fi
  QEMU_PID=""
  return 0
}
