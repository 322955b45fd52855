#!/usr/bin/env bash
# Install the tools kvc's stage scripts and integration tests need, from
# Debian packages only. Idempotent: packages already present are skipped, so
# re-running is cheap. Works on a fresh Debian 12 machine, as root or via sudo.
set -euo pipefail

# What each package is for:
#   libguestfs-tools         virt-customize, virt-sysprep, virt-sparsify, virt-cat, virt-make-fs
#   linux-image-cloud-amd64  a kernel for the libguestfs appliance (/boot may be empty)
#   policycoreutils          setfiles for the appliance in the selinux_relabel test
#                            (build.sh installs it on CI when a relabel is asked for)
#   qemu-system-x86          the appliance and the boot test run under qemu (TCG)
#   qemu-system-arm qemu-efi-aarch64  the qemu test mode's arm64 guests (UEFI)
#   genisoimage socat openssh-client  the qemu test mode: NoCloud seed, guest
#                            agent socket, ssh check (Debian and Ubuntu 24.04 both ship them)
#   qemu-utils               qemu-img
#   buildah skopeo           build and inspect containerDisks without a Docker engine
#   docker-registry          a local plain-http registry for the containerDisk tests
#   debootstrap              builds the bootable Debian test fixture
#   extlinux syslinux-common boot loader for the fixture
#   lint: shellcheck         checks the stage scripts
#   curl ca-certificates xz-utils bzip2 gzip make cloud-guest-utils: used by build.sh
PACKAGES=(
  libguestfs-tools
  policycoreutils
  qemu-system-x86
  qemu-system-arm
  qemu-efi-aarch64
  genisoimage
  socat
  openssh-client
  qemu-utils
  buildah
  skopeo
  docker-registry
  debootstrap
  extlinux
  syslinux-common
  shellcheck
  curl
  ca-certificates
  xz-utils
  bzip2
  gzip
  make
  cloud-guest-utils
  uidmap
  rsync
  jq
)

# gitlab-ci-local (npm) runs the emitted GitLab pipelines in shell mode
# (tests/backends/test_gitlab_ci_local.py); 4.52.2 is the newest that runs on
# Node 20 (later releases use Set.prototype.union) and builds no native module.
GITLAB_CI_LOCAL_VERSION=4.52.2
TOOLS_DIR="$(cd "$(dirname "$0")/.." && pwd)/.tools"

# docker-buildx runs `bake --print` and `imagetools create` in the integration
# tests (tests/integration/buildx.py). Debian 12 packages no docker-buildx; Debian 13
# (trixie) does, and its binary needs only libc6 (>= 2.34) (Debian 12 has 2.36), so
# the trixie .deb is fetched from the Debian mirror apt already uses, checked
# against the SHA256 below (the same as trixie's Packages index lists) and only its
# plugin binary is unpacked into .tools/bin; nothing is installed system-wide.
# trixie (stable) keeps this file in its pool for its whole life; testing (forky)
# has newer versions but drops each from the pool when the next one migrates.
DOCKER_BUILDX_VERSION=0.13.1+ds1-3
declare -A DOCKER_BUILDX_SHA256=(
  [amd64]=fcf8c48204d1603c8f209451d7827eb91bf30759578baf7704e9e1a87e5f1d7f
  [arm64]=6cf361ab892b55753b728adcbd1a99f0616711df853dba64a5297a4a676d96b0
)

# The appliance needs a kernel matching the machine's architecture.
kernel_package() {
  case "$(dpkg --print-architecture)" in
    amd64) echo linux-image-cloud-amd64 ;;
    arm64) echo linux-image-cloud-arm64 ;;
    *) echo "linux-image-$(dpkg --print-architecture)" ;;
  esac
}

# sudo only when we are not already root (containers often lack sudo).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# Lists the packages that are not installed yet, so a second run does nothing.
missing_packages() {
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

install_packages() {
  local -a wanted missing
  wanted=("${PACKAGES[@]}" "$(kernel_package)")
  command -v npm >/dev/null 2>&1 || wanted+=(npm)
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-integration-deps: every Debian package already installed"
    return 0
  fi
  echo "install-integration-deps: installing ${missing[*]}"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

install_gitlab_ci_local() {
  if [ -x "$TOOLS_DIR/node_modules/.bin/gitlab-ci-local" ]; then
    return 0
  fi
  echo "install-integration-deps: installing gitlab-ci-local $GITLAB_CI_LOCAL_VERSION into $TOOLS_DIR"
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --loglevel=error \
    "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION"
}

# The Debian archive apt is configured with (the mirror of this release's main
# suite, not -security/-updates/-backports); DEBIAN_MIRROR overrides it.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "${DEBIAN_MIRROR%/}"
    return 0
  fi
  # shellcheck disable=SC2016 # $(...) is apt's format syntax, not the shell's
  apt-get indextargets --no-release-info --format '$(REPO_URI) $(SUITE) $(COMPONENT)' \
    'Created-By: Packages' |
    awk '$3 == "main" && $2 !~ /-/ { sub("/$", "", $1); print $1; exit }'
}

install_docker_buildx() {
  local arch sha url mirror work bin="$TOOLS_DIR/bin/docker-buildx"
  # `docker-buildx version` prints the Debian version last: a changed pin reinstalls.
  if [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null | awk '{print $NF}')" = "$DOCKER_BUILDX_VERSION" ]; then
    return 0
  fi
  arch="$(dpkg --print-architecture)"
  sha="${DOCKER_BUILDX_SHA256[$arch]:-}"
  if [ -z "$sha" ]; then
    echo "install-integration-deps: no pinned docker-buildx for $arch (only ${!DOCKER_BUILDX_SHA256[*]}): the buildx tests will fail under KVC_REQUIRE_INTEGRATION=1" >&2
    return 1
  fi
  mirror="$(debian_mirror)"
  if [ -z "$mirror" ]; then
    echo "install-integration-deps: found no Debian mirror in the apt configuration; set DEBIAN_MIRROR" >&2
    return 1
  fi
  url="$mirror/pool/main/d/docker-buildx/docker-buildx_${DOCKER_BUILDX_VERSION}_${arch}.deb"
  echo "install-integration-deps: installing docker-buildx $DOCKER_BUILDX_VERSION into $TOOLS_DIR/bin"
  work="$(mktemp -d)"
  if ! fetch_docker_buildx "$url" "$sha" "$work" "$bin"; then
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
}

# fetch_docker_buildx URL SHA256 WORKDIR BIN: download, verify, unpack, install.
# Called in an `if`, where set -e does not apply: every step checks itself.
fetch_docker_buildx() {
  local url="$1" sha="$2" work="$3" bin="$4"
  curl -fsSL --retry 3 -o "$work/buildx.deb" "$url" || {
    echo "install-integration-deps: cannot download $url" >&2
    return 1
  }
  if ! printf '%s  %s\n' "$sha" "$work/buildx.deb" | sha256sum -c --status; then
    echo "install-integration-deps: $url does not have the pinned SHA256 $sha; refusing it" >&2
    return 1
  fi
  dpkg-deb -x "$work/buildx.deb" "$work/root" || return 1
  mkdir -p "$TOOLS_DIR/bin" || return 1
  install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" "$bin.tmp" || return 1
  mv -f "$bin.tmp" "$bin"
}

main() {
  install_packages
  install_gitlab_ci_local
  install_docker_buildx
}

main "$@"
