VIRT_SYSPREP_OPERATIONS=net-hostname,machine-id,tmp-files,rpm-db
_ARCH=$(echo ${ARCH} | sed 's/amd64/x86_64/;s/arm64/aarch64/')
BASE_URL=https://images.example.invalid/almalinux/9/cloud/"${_ARCH}"/images/
DOWNLOAD_FILE=AlmaLinux-9-GenericCloud-latest."${_ARCH}".qcow2
AMD64_SHA256SUM=6db11ac13a0bbf56106eee4dfbc9d3e788602b1e5b3818127a421a6a492b4930
ARM64_SHA256SUM=96a18a485b2a9083e51667a81b0fab784f16f7c2f64e75bdb73ea5f3bd8e2a58
# the sha512 sums are ignored: sha256 wins
AMD64_SHA512SUM=abddfe64fca38577333d1f7b402bd6b3e81fe954f94540632d25c15e2ca759b1191e046f616af875f2fe3d87d0bbbd3edd874dbcd52e637a1fd012c2f56ce1c2
SKIP="ssh"
