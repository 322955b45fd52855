BASE_URL=https://images.example.invalid/incomplete
# amd64 has a download file but no checksum, arm64 a checksum but no file:
# neither architecture resolves
AMD64_DOWNLOAD_FILE=incomplete-amd64.qcow2
AMD64_SHA256SUM=
ARM64_DOWNLOAD_FILE=
ARM64_SHA256SUM=3f19f4c09878d766d8727f71b901641ad7b26bf477427e59c45cc22a0474513a
