BASE_URL=https://images.example.invalid/incomplete
AMD64_DOWNLOAD_FILE=
AMD64_SHA256SUM=
