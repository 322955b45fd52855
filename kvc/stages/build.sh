#!/usr/bin/env bash
# kvc build stage: one image for one arch.
#
# download -> verify -> decompress/convert -> grow -> customize -> sysprep ->
# makefile -> sparsify/compress, all inputs from KVC_* variables (see
# docs/stages.md). The result appears at KVC_OUTPUT only when every step
# succeeded: all work happens in a scratch directory next to it and the final
# file is moved into place in one rename. Functions can be sourced for testing
# (main runs only when the file is executed).
set -euo pipefail

KVC_STAGE=build
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Scratch directory, next to the output so the final mv is an atomic rename
# on one filesystem (and /tmp is often too small for disk images).
WORK=""

cleanup() {
  if [ -n "$WORK" ]; then
    rm -rf "$WORK"
  fi
}

# The file name of the download: the URL's last path segment without query.
source_name() {
  local name="${KVC_URL%%[?#]*}"
  name="${name##*/}"
  [ -n "$name" ] || name=source.img
  printf '%s\n' "$name"
}

# Download with resume: each curl call continues the partial file (-C -),
# and the outer retry covers failures curl itself does not retry.
download() {
  local dest="$1"
  kvc_log "downloading $KVC_URL"
  kvc_retry "${KVC_DOWNLOAD_ATTEMPTS:-5}" "${KVC_RETRY_DELAY:-5}" \
    curl --fail --location --silent --show-error \
    --retry 5 --retry-delay "${KVC_RETRY_DELAY:-5}" --retry-connrefused \
    --continue-at - --output "$dest" -- "$KVC_URL"
}

# Verify the downloaded file. A pinned KVC_CHECKSUM ("sha256:<hex>" or
# "sha512:<hex>") always wins; without one, KVC_CHECKSUM_URL (the spec's
# `verify_at_build: true`) names the upstream checksum file to check against
# now. On mismatch the file is deleted at once so nothing unverified can be
# used, and both hashes are shown for diagnosis.
verify() {
  local file="$1"
  if kvc_bool KVC_INSECURE_SKIP_CHECKSUM; then
    kvc_log "WARNING: checksum verification disabled by the spec"
    return 0
  fi
  if [ -z "${KVC_CHECKSUM:-}" ] && [ -n "${KVC_CHECKSUM_URL:-}" ]; then
    KVC_CHECKSUM="$(checksum_at_build "$file")" || { rm -f "$file"; exit 1; }
  fi
  kvc_require KVC_CHECKSUM
  compare_digest "$file" "$KVC_CHECKSUM"
}

# compare_digest FILE ALGO:HEX: the full digest of FILE must equal HEX.
compare_digest() {
  local file="$1" algo="${2%%:*}" expected="${2#*:}" actual
  expected="${expected,,}"
  case "$algo" in
    sha256 | sha512) ;;
    *) rm -f "$file"; kvc_die "unsupported checksum algorithm '$algo' in KVC_CHECKSUM (sha256 or sha512)" ;;
  esac
  actual="$("${algo}sum" -- "$file")"
  actual="${actual%% *}"
  actual="${actual#\\}"
  if [ "$actual" != "$expected" ]; then
    rm -f "$file"
    kvc_die "checksum mismatch for $KVC_URL: expected $algo:$expected, got $algo:$actual"
  fi
  kvc_log "checksum ok ($algo:$actual)"
}

# Download KVC_CHECKSUM_URL (small, so fetched whole, with retries) and print
# the one digest it publishes for the downloaded file as ALGO:HEX. Refuses a
# file with no entry for it, or with two different digests for it.
checksum_at_build() {
  local file="$1" sums name
  name="$(source_name)"
  sums="$WORK/upstream-checksums"
  kvc_log "verifying at build time against $KVC_CHECKSUM_URL (verify_at_build: no pin in the spec)"
  kvc_retry "${KVC_DOWNLOAD_ATTEMPTS:-5}" "${KVC_RETRY_DELAY:-5}" \
    curl --fail --location --silent --show-error --max-filesize 4194304 \
    --retry 5 --retry-delay "${KVC_RETRY_DELAY:-5}" --retry-connrefused \
    --output "$sums" -- "$KVC_CHECKSUM_URL" ||
    kvc_die "cannot download the checksum file $KVC_CHECKSUM_URL"
  checksum_entry "$sums" "$name" "${KVC_CHECKSUM_URL%%[?#]*}"
}

# checksum_entry FILE NAME CHECKSUM_URL: print ALGO:HEX of NAME's entry in a
# GNU (`HEX  NAME`, `HEX *NAME`) or BSD (`SHA256 (NAME) = HEX`) checksum file;
# PGP armour and comments are skipped. A one-entry file named NAME.<ext>
# (openSUSE's per-file .sha256, which lists the dated file the alias points
# to) and a bare digest stand for NAME itself.
checksum_entry() {
  local sums="$1" name="$2" url="$3" line hex entry algo found="" count=0 only="" base
  base="${url##*/}"
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    entry=""
    if [[ "$line" =~ ^(SHA256|SHA512)\ ?\((.+)\)\ ?=\ ?([0-9A-Fa-f]+)$ ]]; then
      algo="${BASH_REMATCH[1],,}" entry="${BASH_REMATCH[2]}" hex="${BASH_REMATCH[3]}"
    elif [[ "$line" =~ ^([0-9A-Fa-f]+)\ [\ *]?(.+)$ ]]; then
      hex="${BASH_REMATCH[1]}" entry="${BASH_REMATCH[2]}" algo=""
    elif [[ "$line" =~ ^([0-9A-Fa-f]+)$ ]]; then
      hex="${BASH_REMATCH[1]}" entry="$name" algo=""
    else
      continue
    fi
    case "${#hex}" in
      64) [ -n "$algo" ] || algo=sha256 ;;
      128) [ -n "$algo" ] || algo=sha512 ;;
      *) continue ;;
    esac
    entry="${entry##*/}"
    count=$((count + 1))
    only="$algo:${hex,,}"
    [ "$entry" = "$name" ] || continue
    if [ -n "$found" ] && [ "$found" != "$algo:${hex,,}" ]; then
      kvc_die "the checksum file $url lists $name twice with different digests ($found, $algo:${hex,,}); refusing to guess"
    fi
    found="$algo:${hex,,}"
  done < "$sums"
  if [ -z "$found" ] && [ "$count" -eq 1 ] && [[ "$base" == "$name".* ]]; then
    found="$only"
  fi
  [ -n "$found" ] || kvc_die "the checksum file $url has no entry for $name"
  printf '%s\n' "$found"
}

# Which decompressor applies: forced by KVC_DECOMPRESS or guessed by suffix.
decompressor() {
  local name="$1" mode="${KVC_DECOMPRESS:-auto}"
  if [ "$mode" = auto ]; then
    case "$name" in
      *.gz) mode=gzip ;;
      *.xz) mode=xz ;;
      *.bz2) mode=bzip2 ;;
      *) mode=none ;;
    esac
  fi
  case "$mode" in
    none | gzip | xz | bzip2) printf '%s\n' "$mode" ;;
    *) kvc_die "unknown KVC_DECOMPRESS '$mode' (auto, none, gzip, xz, bzip2)" ;;
  esac
}

# Decompress to a new file (streams, so a failure leaves only scratch files)
# and print the path of the result. gzip exits 1 on an error and 2 on a
# warning (sailfishos-mirror/gzip@e95d060, GNU gzip 1.14+: gzip.1:479-481);
# "decompression OK, trailing garbage ignored" is such a warning, given only
# after a whole member decompressed with its CRC checked (gzip.c:1679-1681).
# OpenWrt's x86 combined images carry such trailing data (their recipe runs
# `gzip | append-metadata`: openwrt-devel patch "x86: append metadata to
# combined images", 2020-04-10; the hand-written pipeline kvc import reads
# ignored gzip's status for it: ContainerCraft/kmi@1cf0a30:hack/customize.sh:
# 62-66), so a warning is logged and the build goes on; an error still stops
# it. The download's checksum was verified before this.
decompress() {
  local src="$1" mode dest rc=0
  mode="$(decompressor "$src")"
  if [ "$mode" = none ]; then
    printf '%s\n' "$src"
    return 0
  fi
  dest="$WORK/decompressed.img"
  kvc_log "decompressing with $mode"
  case "$mode" in
    gzip)
      gzip -dc -- "$src" > "$dest" || rc=$?
      case "$rc" in
        0) ;;
        2) kvc_log "gzip warned (see above) after decompressing the whole stream: continuing" ;;
        *) kvc_die "gzip could not decompress the download (exit $rc)" ;;
      esac
      ;;
    xz) xz -dc -T0 -- "$src" > "$dest" ;;
    bzip2) bzip2 -dc -- "$src" > "$dest" ;;
  esac
  rm -f "$src"
  printf '%s\n' "$dest"
}

# Convert the source to qcow2 when asked (raw images such as OpenWrt's);
# prints the path of the working image.
convert() {
  local src="$1" dest="$WORK/work.qcow2"
  if ! kvc_bool KVC_CONVERT; then
    printf '%s\n' "$src"
    return 0
  fi
  kvc_log "converting to qcow2"
  qemu-img convert -O qcow2 "$src" "$dest"
  rm -f "$src"
  printf '%s\n' "$dest"
}

# Grow the virtual disk. Cloud images grow their root partition at first boot
# (cloud-init growpart), so by default only the disk grows; set
# KVC_EXPAND_PARTITION (e.g. /dev/sda1) to also grow that partition and its
# filesystem now with virt-resize (one more appliance run and a full copy).
grow() {
  local img="$1" expanded="$WORK/expanded.qcow2"
  if [ -z "${KVC_DISK_SIZE:-}" ]; then
    printf '%s\n' "$img"
    return 0
  fi
  kvc_log "resizing disk to $KVC_DISK_SIZE"
  qemu-img resize "$img" "$KVC_DISK_SIZE" >&2
  if [ -z "${KVC_EXPAND_PARTITION:-}" ]; then
    printf '%s\n' "$img"
    return 0
  fi
  kvc_log "expanding $KVC_EXPAND_PARTITION with virt-resize"
  qemu-img create -f qcow2 "$expanded" "$(disk_bytes "$img")" >&2
  virt-resize --expand "$KVC_EXPAND_PARTITION" "$img" "$expanded" >&2
  rm -f "$img"
  printf '%s\n' "$expanded"
}

# Virtual size in bytes, from qemu-img's JSON (no jq on every runner).
disk_bytes() {
  qemu-img info --output=json "$1" | sed -n 's/^ *"virtual-size": *\([0-9]*\).*/\1/p' | head -n1
}

# virt-customize's network switch (its appliance has network by default).
guestfs_network_args() {
  if ! kvc_bool KVC_GUEST_NETWORK true; then
    printf '%s\n' --no-network
  fi
}

# What the libguestfs appliance needs from this host beyond libguestfs-tools,
# installed without recommends (the appliance is assembled by supermin from
# the host's own packages):
# - libguestfs-xfs: mkfs/xfs_growfs for XFS roots (virt-resize, --install on
#   RHEL-family images); only a recommendation of libguestfs-tools.
# - a DHCP client for the appliance network (--install, --update): the
#   appliance runs dhclient if present, else dhcpcd
#   (libguestfs/libguestfs@v1.52.0:appliance/init:115-123). libguestfs 1.52,
#   the version Ubuntu 24.04 ships, lists only isc-dhcp-client for Debian and
#   Ubuntu (v1.52.0:appliance/packagelist.in:77), which a runner need not
#   have installed; dhcpcd-base joined the list in v1.55.5 (commit 91fab3f49),
#   the one Debian 13 hosts need (libguestfs issue #211). Both are installed
#   where the archive still has them.
# - policycoreutils when a relabel is asked for: see guestfs_selinux_appliance.
appliance_packages() {
  printf '%s\n' libguestfs-xfs dhcpcd-base
  if command -v apt-cache >/dev/null 2>&1 && kvc_apt_known isc-dhcp-client; then
    printf '%s\n' isc-dhcp-client
  fi
  if relabel_requested; then
    printf '%s\n' policycoreutils
  fi
}

# The kernel supermin would put in the libguestfs appliance, or failure when
# it would find none. libguestfs runs `supermin --build --copy-kernel`
# (libguestfs/libguestfs@v1.52.0:lib/appliance.c:308-330), and supermin takes
# SUPERMIN_KERNEL when set, else the newest /lib/modules/*/vmlinuz of at least
# 10000 bytes, else a /boot/vmlinu?-* (names containing xen, zfcpdump or +debug
# skipped) whose modules directory /lib/modules/VERSION has a modules.dep, and
# otherwise fails with "failed to find a suitable kernel"
# (libguestfs/supermin@v5.2.2:src/format_ext2_kernel.ml:28-49,72-179,196-210).
# VERSION is read from the kernel file's header first (x86) and from the file
# name otherwise; the name is what is checked here. KVC_HOST_ROOT (tests)
# prefixes /boot and /lib/modules.
appliance_kernel() {
  local root="${KVC_HOST_ROOT:-}"
  if [ -n "${SUPERMIN_KERNEL:-}" ]; then
    printf '%s\n' "$SUPERMIN_KERNEL"
    return 0
  fi
  kvc_first_match modules_kernel "$root"/lib/modules/*/vmlinuz ||
    kvc_first_match boot_kernel "$root"/boot/vmlinu?-*
}

# A /lib/modules/VERSION/vmlinuz supermin takes: at least 10000 bytes.
modules_kernel() {
  [ -f "$1" ] && [ "$(stat -L -c %s -- "$1")" -ge 10000 ]
}

# A /boot/vmlinu?-VERSION supermin takes: not a xen, zfcpdump or debug kernel,
# with /lib/modules/VERSION/modules.dep beside it.
boot_kernel() {
  local name="${1##*/}"
  case "$name" in
    *xen* | *zfcpdump* | *+debug*) return 1 ;;
  esac
  [ -f "$1" ] && [ -f "${KVC_HOST_ROOT:-}/lib/modules/${name#vmlinu?-}/modules.dep" ]
}

# The kernel package for this host's distribution and architecture. supermin
# only recommends a kernel (Debian 12: `Recommends: linux-image-amd64`), which
# --no-install-recommends drops, and a container (GitLab.com runs jobs in
# ubuntu:24.04) has none in /boot. Ubuntu: linux-image-virtual (the generic
# kernel and its modules, on amd64 and arm64; linux-image-generic would also
# pull linux-firmware). Debian: the cloud flavour, linux-image-cloud-amd64 or
# linux-image-cloud-arm64 (what scripts/install-integration-deps.sh installs),
# else linux-image-ARCH. Nothing is guessed for other distributions.
kernel_package() {
  local release="${KVC_HOST_ROOT:-}/etc/os-release" key value id="" like="" arch
  [ -r "$release" ] || return 1
  while IFS='=' read -r key value; do
    value="${value#[\"\']}"
    value="${value%[\"\']}"
    case "$key" in
      ID) id="$value" ;;
      ID_LIKE) like="$value" ;;
    esac
  done <"$release"
  arch="$(dpkg --print-architecture)"
  case " $id $like " in
    *" ubuntu "*) printf '%s\n' linux-image-virtual ;;
    *" debian "*)
      case "$arch" in
        amd64 | arm64) printf '%s\n' "linux-image-cloud-$arch" ;;
        *) printf '%s\n' "linux-image-$arch" ;;
      esac
      ;;
    *) return 1 ;;
  esac
}

# Make sure supermin finds a kernel for the appliance: install the host's
# kernel package when there is none and installing is allowed (CI), else say
# what every libguestfs step is about to fail on.
ensure_appliance_kernel() {
  local kernel pkg
  if kernel="$(appliance_kernel)"; then
    kvc_log "libguestfs appliance kernel: $kernel"
    return 0
  fi
  if ! kvc_can_apt || ! pkg="$(kernel_package)"; then
    kvc_log "WARNING: no kernel for the libguestfs appliance in /boot or /lib/modules, so supermin will fail: install one (linux-image-virtual on Ubuntu, linux-image-cloud-amd64 or -arm64 on Debian) or set SUPERMIN_KERNEL"
    return 0
  fi
  kvc_log "no kernel for the libguestfs appliance in /boot or /lib/modules: installing $pkg"
  kvc_apt_install "$pkg"
  kernel="$(appliance_kernel)" || kvc_die "installed $pkg but supermin would still find no kernel (no /boot/vmlinuz-VERSION with /lib/modules/VERSION/modules.dep)"
  kvc_log "libguestfs appliance kernel: $kernel"
}

# The appliance's network backend. libguestfs >= 1.52 uses passt whenever
# qemu >= 7.2 and `passt --help` exits 0 or 1, and qemu's built-in SLIRP
# otherwise (libguestfs/libguestfs@v1.52.0:lib/launch-direct.c:772-796,
# lib/launch.c:401-421). On Ubuntu 24.04 passt runs under its AppArmor profile
# and needs unprivileged user namespaces, which Ubuntu restricts
# (kernel.apparmor_restrict_unprivileged_userns=1), so the appliance gets no
# network (libguestfs issue #170). SLIRP needs neither, so unless
# KVC_GUESTFS_PASST=true a `passt` that always fails comes first on PATH and
# libguestfs takes SLIRP, on every distribution alike.
guestfs_network_backend() {
  if kvc_bool KVC_GUESTFS_PASST; then
    kvc_log "libguestfs appliance network: passt when available (KVC_GUESTFS_PASST=true)"
    return 0
  fi
  mkdir -p "$WORK/bin"
  printf '#!/bin/sh\n# kvc: hide passt so libguestfs uses SLIRP (see build.sh)\nexit 127\n' >"$WORK/bin/passt"
  chmod +x "$WORK/bin/passt"
  export PATH="$WORK/bin:$PATH"
  kvc_log "libguestfs appliance network: SLIRP (passt hidden; KVC_GUESTFS_PASST=true to allow it)"
}

# A relabel was asked for: sysprep.selinux_relabel, or a selinux-relabel
# entry in sysprep.commands.
relabel_requested() {
  local i op
  kvc_bool KVC_SELINUX_RELABEL && return 0
  for ((i = 1; i <= ${KVC_COMMANDS_COUNT:-0}; i++)); do
    op="KVC_COMMAND_${i}_OP"
    [ "${!op:-}" = selinux-relabel ] && return 0
  done
  return 1
}

# The libguestfs installation's appliance directory: the first element of
# LIBGUESTFS_PATH, or of the usual install locations, holding a supermin
# appliance (supermin.d/base.tar.gz and supermin.d/packages, the test
# libguestfs itself applies: libguestfs/libguestfs@v1.52.0:lib/appliance.c:
# 195-243).
guestfs_appliance_dir() {
  local -a dirs
  if [ -n "${LIBGUESTFS_PATH:-}" ]; then
    IFS=: read -r -a dirs <<<"$LIBGUESTFS_PATH"
  else
    dirs=(/usr/lib/*/guestfs /usr/lib64/guestfs /usr/lib/guestfs /usr/local/lib/guestfs)
  fi
  kvc_first_match supermin_appliance "${dirs[@]}"
}

supermin_appliance() {
  [ -f "$1/supermin.d/base.tar.gz" ] && [ -f "$1/supermin.d/packages" ]
}

# SELinux relabelling needs setfiles inside the libguestfs appliance: the
# daemon offers the selinuxrelabel feature only when setfiles is there
# (libguestfs/libguestfs@v1.52.0:daemon/selinux-relabel.c:35-39), and
# virt-customize without it only touches /.autorelabel, so the guest
# relabels and reboots at its first boot
# (libguestfs/libguestfs-common@0dba002:mlcustomize/SELinux_relabel.ml:27-49,
# the common code of guestfs-tools v1.52.0). supermin assembles the appliance
# from the host's installed packages named in supermin.d, and the list
# libguestfs generates for Debian and Ubuntu has no policycoreutils (only the
# Red Hat and OpenCloudOS lists do: libguestfs/libguestfs@v1.52.0:
# appliance/packagelist.in:26-55,57-97,219-238). So for a relabel the
# appliance is built from a private copy of supermin.d (links to the
# installed files) plus one more package list naming policycoreutils, the way
# Debian's libguestfs-xfs adds xfsprogs with its supermin.d/packages-xfs;
# supermin reads every file of the directory and takes one starting with a
# letter or digit as a package list, and leaves out packages the host lacks
# (libguestfs/supermin@v5.2.2:src/mode_build.ml:241-266,309-344,
# src/ph_dpkg.ml:57-70). The new directory is newer than the cached
# appliance, so `supermin --if-newer` rebuilds it (src/supermin.ml:233-252).
guestfs_selinux_appliance() {
  local system dir entry
  relabel_requested || return 0
  if command -v dpkg-query >/dev/null 2>&1 && ! kvc_package_installed policycoreutils; then
    kvc_log "WARNING: policycoreutils is not installed, so the libguestfs appliance has no setfiles to relabel with"
  fi
  if ! system="$(guestfs_appliance_dir)"; then
    kvc_log "WARNING: no libguestfs supermin appliance found (LIBGUESTFS_PATH or /usr/lib*/guestfs): the appliance is used as it is for the SELinux relabel"
    return 0
  fi
  dir="$WORK/guestfs"
  mkdir -p "$dir/supermin.d"
  for entry in "$system"/supermin.d/*; do
    ln -s "$entry" "$dir/supermin.d/"
  done
  printf '%s\n' policycoreutils >"$dir/supermin.d/packages-kvc-selinux"
  export LIBGUESTFS_PATH="$dir"
  kvc_log "SELinux relabel: libguestfs appliance from $system plus policycoreutils ($dir)"
}

# After virt-customize and virt-sysprep (guestfs-tools >= 1.50 relabel in
# both unless told not to: libguestfs/guestfs-tools@v1.52.0:
# customize/customize_run.ml:398-401, sysprep/sysprep_operation_customize.ml:
# 33-47), a requested relabel must have happened now: /.autorelabel left in
# the guest means it fell back to relabelling at first boot. One read-only
# guestfish run answers `exists` (true/false) and prints the SELinux config;
# `-` lets the cat fail on a guest without one (libguestfs/libguestfs@v1.52.0:
# fish/guestfish.pod:945-954). A guest with SELINUX=disabled gets
# /.autorelabel on purpose (SELinux_relabel.ml:58-72 above) and passes.
# Without a requested relabel the appliance gets no setfiles, yet both tools
# still relabel an SELinux guest and so fall back to touching /.autorelabel
# (libguestfs/libguestfs-common@0dba002:mlcustomize/SELinux_relabel.ml:27-41):
# the same check then only warns, naming the setting that relabels at build time.
check_relabelled() {
  local img="$1" out answer requested=true
  relabel_requested || requested=false
  kvc_log "checking that the SELinux relabel happened at build time (no /.autorelabel)"
  # The commands arrive on stdin from a here-string, not a pipe: under pipefail a
  # guestfish that exits before reading them would fail the pipeline through the
  # writer's SIGPIPE, however well it answered.
  if ! out="$(guestfish --ro -a "$img" -i <<<$'exists /.autorelabel\n-cat /etc/selinux/config')"; then
    "$requested" || { kvc_log "WARNING: guestfish could not inspect $img to look for /.autorelabel"; return 0; }
    kvc_die "guestfish could not inspect $img to check the SELinux relabel"
  fi
  answer="${out%%$'\n'*}"
  case "$answer" in
    false)
      "$requested" && kvc_log "SELinux labels set at build time"
      return 0
      ;;
    true) ;;
    *)
      "$requested" || { kvc_log "WARNING: unexpected answer from guestfish 'exists /.autorelabel': '$answer'"; return 0; }
      kvc_die "unexpected answer from guestfish 'exists /.autorelabel': '$answer'"
      ;;
  esac
  if grep -Eq '^[[:space:]]*SELINUX[[:space:]]*=[[:space:]]*["'"'"']?disabled' <<<"$out"; then
    kvc_log "the guest has SELINUX=disabled: libguestfs leaves /.autorelabel for when SELinux is enabled again"
    return 0
  fi
  if ! "$requested"; then
    kvc_log "WARNING: the image has /.autorelabel: virt-customize and virt-sysprep relabel an SELinux guest by default, and without setfiles in the libguestfs appliance they leave it for the first boot, which then relabels and reboots. Set sysprep.selinux_relabel: true to relabel at build time (docs/troubleshooting.md)"
    return 0
  fi
  kvc_die "SELinux relabel requested but not done: the image has /.autorelabel, so it would relabel and reboot at first boot. The libguestfs appliance had no setfiles: install policycoreutils on the build host (build.sh does on CI) and see docs/troubleshooting.md"
}

# sysprep.commands, in order, appended to the args array of customize():
# each command is one argv element "--<op>" and its argument another. The op
# was checked against virt-customize's command table at compile time; here it
# only has to look like a command name, so no value can become another option.
customize_commands() {
  local i op arg
  for ((i = 1; i <= ${KVC_COMMANDS_COUNT:-0}; i++)); do
    op="KVC_COMMAND_${i}_OP"
    arg="KVC_COMMAND_${i}_ARG"
    [ -n "${!op:-}" ] || kvc_die "$op is not set (KVC_COMMANDS_COUNT=$KVC_COMMANDS_COUNT)"
    [[ "${!op}" =~ ^[a-z][a-z0-9-]*$ ]] || kvc_die "$op='${!op}' is not a virt-customize command"
    if [ -n "${!arg+set}" ]; then
      args+=("--${!op}" "${!arg}")
    else
      args+=("--${!op}")
    fi
  done
}

# One virt-customize call for everything: each libguestfs launch costs many
# seconds (minutes under emulation). Every value is one argv element, so post
# commands reach the guest shell verbatim and are never interpreted here.
customize() {
  local img="$1" i name
  local -a args=(-a "$img")
  mapfile -t -O "${#args[@]}" args < <(guestfs_network_args)
  local before="${#args[@]}"
  kvc_bool KVC_SYSPREP_UPDATE && args+=(--update)
  [ -n "${KVC_SYSPREP_INSTALL:-}" ] && args+=(--install "$KVC_SYSPREP_INSTALL")
  for ((i = 1; i <= ${KVC_POST_COMMANDS_COUNT:-0}; i++)); do
    name="KVC_POST_COMMAND_$i"
    [ -n "${!name+set}" ] || kvc_die "$name is not set (KVC_POST_COMMANDS_COUNT=$KVC_POST_COMMANDS_COUNT)"
    args+=(--run-command "${!name}")
  done
  customize_commands
  kvc_bool KVC_SELINUX_RELABEL && args+=(--selinux-relabel)
  if [ "${#args[@]}" -eq "$before" ]; then
    kvc_log "nothing to customize"
    return 0
  fi
  kvc_log "customizing (virt-customize)"
  virt-customize "${args[@]}"
}

sysprep() {
  local img="$1"
  local -a args=(-a "$img")
  [ -n "${KVC_SYSPREP_OPERATIONS:-}" ] && args+=(--operations "$KVC_SYSPREP_OPERATIONS")
  kvc_log "virt-sysprep"
  virt-sysprep "${args[@]}"
}

# Export each KVC_VAR_<name> as <name> for the makefile. Names come from the
# environment's own variable names, so they are identifiers already; values
# are assigned, never evaluated.
export_image_vars() {
  local var
  while IFS= read -r var; do
    case "$var" in
      KVC_VAR_?*) export "${var#KVC_VAR_}=${!var}" ;;
    esac
  done < <(compgen -e)
}

# The user's makefile step, in a subshell so its variables do not leak.
run_makefile() {
  local img="$1"
  local -a args
  if [ -z "${KVC_MAKEFILE:-}" ] || [ "$KVC_MAKEFILE" = false ]; then
    return 0
  fi
  args=(-C "${KVC_MAKEFILE_DIR:-.}")
  [ -n "${KVC_MAKEFILE_TARGET:-}" ] && args+=("$KVC_MAKEFILE_TARGET")
  args+=("DISK=$(cd "$(dirname "$img")" && pwd)/$(basename "$img")")
  kvc_log "make ${args[*]}"
  (
    export_image_vars
    make "${args[@]}"
  )
}

# Sparsify in place (no copy), then write a compressed qcow2 (zeroes and
# sparse regions would otherwise be expanded inside image layers) and rename
# it over KVC_OUTPUT in one step.
finalize() {
  local img="$1" tmp
  # virt-sparsify never enables the appliance network (and has no
  # --no-network option), so KVC_GUEST_NETWORK does not apply here.
  kvc_log "sparsifying"
  virt-sparsify --in-place "$img"
  tmp="$WORK/final.qcow2"
  kvc_log "compressing to $KVC_OUTPUT"
  qemu-img convert -c -O qcow2 "$img" "$tmp"
  mv -f "$tmp" "$KVC_OUTPUT"
}

# KVC_DOWNLOAD_IN=container: run one phase of this script inside
# KVC_DOWNLOAD_CONTAINER (an image with libguestfs, so the runner needs none).
# The working and scratch directories are bind-mounted at the same paths, and
# KVC_* variables are passed by name (-e NAME) so their values never pass
# through a command line.
in_container() {
  local phase="$1" image="$2" var script
  local -a args
  kvc_require KVC_DOWNLOAD_CONTAINER
  script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  args=(run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp
    -v "$PWD:$PWD" -v "$WORK:$WORK" -v "$script:$script:ro" -w "$PWD")
  # Hardware acceleration when the runner has it; the script probes it inside.
  if [ -e /dev/kvm ]; then
    args+=(--device /dev/kvm)
  fi
  while IFS= read -r var; do
    case "$var" in
      KVC_*) args+=(-e "$var") ;;
    esac
  done < <(compgen -e)
  args+=(-e KVC_PHASE -e KVC_IMAGE_PATH)
  args+=("$KVC_DOWNLOAD_CONTAINER" bash "$script/build.sh")
  kvc_log "running the $phase phase inside container $KVC_DOWNLOAD_CONTAINER"
  KVC_PHASE="$phase" KVC_IMAGE_PATH="$image" docker "${args[@]}"
}

# Download and verify; the unit a container may run on its own.
fetch() {
  local dest="$1"
  download "$dest"
  verify "$dest"
}

# Everything from the download to virt-sysprep; the image's path ends up in
# PREPARED (the steps print paths, but virt-customize also writes to stdout).
PREPARED=""
prepare() {
  local img
  img="$WORK/$(source_name)"
  fetch "$img"
  img="$(decompress "$img")"
  img="$(convert "$img")"
  kvc_setup_libguestfs
  guestfs_network_backend
  guestfs_selinux_appliance
  img="$(grow "$img")"
  if kvc_bool KVC_SYSPREP_ENABLED true; then
    customize "$img"
    sysprep "$img"
    check_relabelled "$img"
  fi
  PREPARED="$img"
}

# Inside the container: one phase, on the image path the host chose.
container_phase() {
  case "$KVC_PHASE" in
    prepare)
      prepare
      # The host named the result: it cannot see which steps renamed the image.
      [ "$PREPARED" = "${KVC_IMAGE_PATH:?}" ] || mv -f "$PREPARED" "$KVC_IMAGE_PATH"
      ;;
    finalize) kvc_setup_libguestfs; finalize "${KVC_IMAGE_PATH:?}" ;;
    *) kvc_die "unknown KVC_PHASE '$KVC_PHASE'" ;;
  esac
}

main() {
  if [ -n "${KVC_PHASE:-}" ]; then
    WORK="$(dirname "${KVC_IMAGE_PATH:?}")"
    container_phase
    return 0
  fi
  kvc_require KVC_URL KVC_OUTPUT
  local container=false
  [ "${KVC_DOWNLOAD_IN:-host}" = container ] && container=true
  if [ "$container" = true ]; then
    kvc_ensure_tools docker:docker.io
  else
    kvc_ensure_tools curl:curl qemu-img:qemu-utils gzip:gzip xz:xz-utils bzip2:bzip2 \
      virt-customize:libguestfs-tools virt-sysprep:libguestfs-tools \
      virt-sparsify:libguestfs-tools guestfish:libguestfs-tools
    local list
    local -a packages
    list="$(appliance_packages)"
    mapfile -t packages <<<"$list"
    kvc_ensure_packages "${packages[@]}"
    ensure_appliance_kernel
  fi
  mkdir -p "$(dirname "$KVC_OUTPUT")"
  # A failed build must leave no artifact, not even one from an earlier run.
  rm -f "$KVC_OUTPUT"
  WORK="$(mktemp -d "$(dirname "$KVC_OUTPUT")/.kvc-build.XXXXXX")"
  WORK="$(cd "$WORK" && pwd)"
  trap cleanup EXIT
  if [ "$container" = true ]; then
    local img="$WORK/prepared.img"
    in_container prepare "$img"
    run_makefile "$img"
    in_container finalize "$img"
  else
    prepare
    run_makefile "$PREPARED"
    finalize "$PREPARED"
  fi
  kvc_log "built $KVC_OUTPUT"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
