__VERSION="23.05.3"
AMD64_BASE_URL=https://images.example.invalid/router/${__VERSION}/targets/x86/64/
AMD64_DOWNLOAD_FILE=router-${__VERSION}-x86-64-generic-squashfs-combined-efi.img.gz
AMD64_SHA256SUM=9999999999999999999999999999999999999999999999999999999999999999
CUSTOMIZE=false
CONVERT=true
SKIP="ssh|qemu-guest-agent"
