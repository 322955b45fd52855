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

main() {
  install_packages
  install_gitlab_ci_local
}

main "$@"
