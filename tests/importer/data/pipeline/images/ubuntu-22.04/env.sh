# Ubuntu 22.04: per-arch download files, one base URL
VIRT_SYSPREP_OPERATIONS=customize,logfiles,machine-id,tmp-files
BASE_URL=https://images.example.invalid/ubuntu/jammy/current
AMD64_DOWNLOAD_FILE=jammy-server-cloudimg-amd64-disk-kvm.img
ARM64_DOWNLOAD_FILE=jammy-server-cloudimg-arm64.img
AMD64_SHA256SUM=ad40be9b4e4eabf09cfde367b9275c74eec14db6078a1bb3b15e7f2737ca7243
ARM64_SHA256SUM=b62d4d365a64301222c0a8ece994ad240a98c515617ce5c27d2548639cc1d6ae
