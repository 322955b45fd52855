VIRT_SYSPREP_OPERATIONS=customize,logfiles,machine-id,tmp-files
export BASE_URL='https://images.example.invalid/ubuntu/noble/current'   # quoted, exported
DOWNLOAD_FILE="noble-server-cloudimg-${ARCH}.img"
AMD64_SHA256SUM=e2d1fa22acad4f7de9c764c4b75eac0b4f2f7d0940b8b19ef94be88739295f10
ARM64_SHA256SUM=182dfec1f655f3216aabe31d1bc1dbb19a8c1b4f030174e8a7e192b85ca64fcd
