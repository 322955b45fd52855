__VERSION="23.05.3"
AMD64_BASE_URL=https://images.example.invalid/router/${__VERSION}/targets/x86/64/
AMD64_DOWNLOAD_FILE=router-${__VERSION}-x86-64-generic-squashfs-combined-efi.img.gz
AMD64_SHA256SUM=cc5a84df7de373e2201d7475eba5e5bcb4d431d9548073a2985d05d68ac242dc
CUSTOMIZE=false
CONVERT=true
SKIP="ssh|qemu-guest-agent"
