"""Setup shell that more than one backend runs before a stage: pinned, checksum-verified.

Runners without a tool a stage needs get it here (GitHub uses its setup
actions instead). One pin, so the backends cannot drift apart.
"""

from __future__ import annotations

from typing import Final

# sigstore/cosign's release binary, verified against its published sha256.
COSIGN_VERSION: Final = "v3.0.6"
COSIGN_SHA256: Final = "c956e5dfcac53d52bcf058360d579472f0c1d2d9b69f55209e256fe7783f4c74"


def install_cosign(sudo: str) -> str:
    """Download, verify and install cosign (``sudo`` is "sudo " where the job is no root)."""
    return f"""\
curl -fsSL --retry 3 -o /tmp/cosign \\
  https://github.com/sigstore/cosign/releases/download/{COSIGN_VERSION}/cosign-linux-amd64
echo "{COSIGN_SHA256}  /tmp/cosign" | sha256sum -c -
{sudo}install -m 0755 /tmp/cosign /usr/local/bin/cosign
"""
