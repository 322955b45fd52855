VIRT_SYSPREP_OPERATIONS=net-hostname,machine-id,tmp-files,rpm-db
_ARCH=$(echo ${ARCH} | sed 's/amd64/x86_64/;s/arm64/aarch64/')
BASE_URL=https://images.example.invalid/almalinux/9/cloud/"${_ARCH}"/images/
DOWNLOAD_FILE=AlmaLinux-9-GenericCloud-latest."${_ARCH}".qcow2
AMD64_SHA256SUM=5555555555555555555555555555555555555555555555555555555555555555
ARM64_SHA256SUM=6666666666666666666666666666666666666666666666666666666666666666
# the sha512 sums are ignored: sha256 wins
AMD64_SHA512SUM=cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
SKIP="ssh"
