_ARCH="$(echo "$ARCH" | sed 's/arm64/aarch64/;s/amd64/x86_64/')"
_BUILD_VERSION="40.20240416.3.1"
BASE_URL=https://images.example.invalid/coreos/"${_BUILD_VERSION}"/"${_ARCH}"
DOWNLOAD_FILE=fedora-coreos-"${_BUILD_VERSION}"-qemu."${_ARCH}".qcow2.xz
AMD64_SHA256SUM=323d15f9204b9423b4f0b81589be0aec32b294d3eba1fc173c4856503a21a83d
ARM64_SHA256SUM=453e75eef057758b544cfe2aa49fccfa4b66ebeedd5d650a5651f9c4dfd723ab
CUSTOMIZE=false
SKIP="qemu-guest-agent|ssh"
