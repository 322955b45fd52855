"""No input makes kvc import run anything, and no input makes it crash.

Every way Python can start a process is replaced by a function that fails the
test; hypothesis then feeds import trees whose env.sh, virt.sysprep, bake.hcl
and CircleCI config mix shell metacharacters, command substitutions and random
text. The import must finish (or refuse with a clean FatalError) and the
canary file that any executed payload would create must not exist.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvc.errors import FatalError
from kvc.importer.run import import_tree

CANARY = Path(tempfile.gettempdir()) / "kvc-import-canary"
PAYLOADS = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f"; touch {CANARY}", f"&& touch {CANARY}",
    f"| touch {CANARY}",
    f"$(echo ${{ARCH}} | sed 's/amd64/x86_64/;s/arm64/aarch64/'; touch {CANARY})",
    f"${{X:-$(touch {CANARY})}}", f"<(touch {CANARY})", f"> {CANARY}", "$((1+2))",
    f"\"$(touch {CANARY})\"", f"'$(touch {CANARY})'", "\\", "\n", "${ARCH}", "$ARCH",
    "$(echo ${ARCH} | sed 's/amd64/x86_64/;s/arm64/aarch64/')", "=", "\"", "'", "#", "{", "}",
    f"source {CANARY}", f"eval touch {CANARY}", f"f() {{ touch {CANARY}; }}", "~", "\x00",
]
NAMES = ["BASE_URL", "DOWNLOAD_FILE", "AMD64_SHA256SUM", "ARM64_SHA512SUM", "CUSTOMIZE",
         "CONVERT", "SKIP", "VIRT_SYSPREP_OPERATIONS", "AMD64_DOWNLOAD_FILE", "_ARCH",
         "export BASE_URL", "PATH", "X"]

fragment = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=12),
                     st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
line = st.one_of(
    st.builds(lambda n, v: f"{n}={''.join(v)}", st.sampled_from(NAMES),
              st.lists(fragment, max_size=4)),
    st.builds("".join, st.lists(fragment, max_size=4)),
)
env_sh = st.builds("\n".join, st.lists(line, max_size=8))
sysprep = st.builds("\n".join, st.lists(st.one_of(
    st.sampled_from(["update", "install git", "run-command " + PAYLOADS[0],
                     "edit /etc/x:\\", "  s/a/b/", "selinux-relabel", "# c", ""]),
    st.text(max_size=20)), max_size=6))
hcl = st.one_of(st.just(""), st.builds(
    lambda a, b: 'function "tag" {\n result = "r.example/${image}:${tag}' + a + '"\n}\n'
                 'target "img-1" {\n tags = [tag("img", "' + b + '")]\n}\n',
    st.text(max_size=8), st.text(max_size=8)))
circle = st.one_of(st.just("workflows: {w: {jobs: [{j: {matrix: {parameters: "
                           "{flavor: [img-1], arch: [amd64]}}}}]}}\n"),
                   st.text(max_size=40))


def _forbidden(*_: Any, **__: Any) -> Any:
    raise AssertionError("kvc import tried to start a process")


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "Popen", _forbidden)
    for name in ("system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp",
                 "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp",
                 "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _forbidden)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=env_sh, script=sysprep, bake=hcl, config=circle)
def test_no_input_executes_anything(no_processes: None, env: str, script: str, bake: str,
                                    config: str) -> None:
    CANARY.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        image = root / "images" / "img-1"
        image.mkdir(parents=True)
        (image / "env.sh").write_text(env, encoding="utf-8", errors="surrogateescape")
        (image / "virt.sysprep").write_text(script, encoding="utf-8",
                                            errors="surrogateescape")
        (root / "bake.hcl").write_text(bake, encoding="utf-8", errors="surrogateescape")
        (root / ".circleci").mkdir()
        (root / ".circleci" / "config.yml").write_text(config, encoding="utf-8",
                                                       errors="surrogateescape")
        try:
            outcome = import_tree(root, registry="r.example/test")
        except FatalError:
            outcome = None
    assert not CANARY.exists()
    if outcome is not None and outcome.spec is not None:
        assert outcome.spec.startswith("# Imported by `kvc import`")


def test_the_guard_itself_works(no_processes: None) -> None:
    with pytest.raises(AssertionError, match="start a process"):
        subprocess.run(["true"], check=False)
    with pytest.raises(AssertionError, match="start a process"):
        os.system("true")
