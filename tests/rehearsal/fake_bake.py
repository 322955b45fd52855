"""`docker buildx bake` for the rehearsal (called by fake.sh with bake's argv).

Reads the bake file's target the way buildx does for kvc's Containerfile
(`COPY ${TARGETARCH}/disk.qcow2`: one disk per platform under the context),
hashes those disks into the image digest, then "pushes" it (registry.txt
lines "ref digest" for repo@digest, and every tag unless pushed by digest) or writes an "OCI
archive" (first line the digest, then the names it carries). Prints the call's
facts as JSON. Standard library only: it runs under `python -I -S`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from itertools import pairwise
from pathlib import Path


def option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def repository(name: str) -> str:
    """NAME without its tag; a registry port (host:5000/repo) is not a tag."""
    name = name.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def main(argv: list[str]) -> int:
    target = argv[-1]
    bakefile = json.loads(Path(option(argv, "-f") or "docker-bake.json").read_text())
    spec = bakefile["target"][target]
    sets = [v.split("=", 1) for a, v in pairwise(argv) if a == "--set"]
    tags = [t for k, v in sets if k == f"{target}.tags" for t in v.split(",")]
    tags = tags or spec.get("tags", [])
    disks: dict[str, str] = {}
    for platform in spec["platforms"]:
        arch = platform.split("/")[1]
        disk = Path(spec["context"]) / arch / "disk.qcow2"
        if not disk.is_file():
            print(f"ERROR: failed to compute cache key: {disk}: not found", file=sys.stderr)
            return 1
        disks[arch] = hashlib.sha256(disk.read_bytes()).hexdigest()
    digest = "sha256:" + hashlib.sha256(json.dumps([target, disks]).encode()).hexdigest()
    meta = option(argv, "--metadata-file")
    if meta:
        Path(meta).write_text(json.dumps({target: {"containerimage.digest": digest}}, indent=2))
    output = dict(sets).get(f"{target}.output", "type=registry")
    fields = dict(kv.split("=", 1) for kv in output.split(","))
    names = [*tags, *(n for n in fields.get("name", "").split(";") if n)]
    facts = {"staged": digest, "tags": names, "disks": disks, "output": output}
    pushed = fields["type"] == "registry" or (
        fields["type"] == "image" and fields.get("push") == "true"
    )
    if pushed:
        # Every name is pushed as repo@digest; under push-by-digest=true no tag
        # is pushed (moby/buildkit@v0.32.2:README.md:284), otherwise each tag too.
        by_digest = fields.get("push-by-digest") == "true"
        lines = [f"{repository(n)}@{digest} {digest}\n" + ("" if by_digest else f"{n} {digest}\n")
                 for n in names]
        with (Path(os.environ["REHEARSAL_WORLD"]) / "registry.txt").open("a") as f:
            f.write("".join(lines))
    elif fields["type"] == "oci" and "dest" in fields:
        Path(fields["dest"]).write_text("\n".join([digest, *names]) + "\n")
    else:
        print(f"fake bake: output {output!r} is not emulated", file=sys.stderr)
        return 1
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
