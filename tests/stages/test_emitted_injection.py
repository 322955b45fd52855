"""No injection: hostile spec values compile, reach the emitted build script only
as data, and arrive byte-for-byte where they belong.

The spec is compiled for every backend; the environment of the build job is
read back from each emitted file as the CI system reads it
(tests/backends/ci_syntax.py: anything it would evaluate is a failure, so a
missing escape fails here), the raw text is checked to carry the escape, and
the emitted .kvc/stages/build.sh runs with recording stubs for every tool.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.cli import main
from tests.backends.ci_syntax import circleci_env, github_env
from tests.stages.conftest import Stubs

# In the spec, '{{' and '}}' are literal braces: these resolve to '${{ ... }}'.
GH_EXPR_SPEC = "${{{{ secrets.KVC_REGISTRY_PASSWORD }}}}"
GH_EXPR = "${{ secrets.KVC_REGISTRY_PASSWORD }}"
CIRCLE_PARAM = "<< pipeline.git.revision >>"
# GitLab expands "$NAME" and "${NAME}" in variables unless the variable says expand: false.
GITLAB_VAR = "$CI_JOB_TOKEN ${CI_SERVER_URL} $$HOME"
BACKENDS = ("github", "circleci", "gitlab")


def _commands(canary: Path) -> list[str]:
    return [
        f"echo $(touch {canary}) `touch {canary}` ; touch {canary}",
        "printf '%s\\n' \"double\" 'single' \\\\ && echo " + GH_EXPR,
        f"line one\nline two  with  spaces * ? [a] $HOME {CIRCLE_PARAM}",
        f"echo {GITLAB_VAR}",
    ]


def _literal(value: str) -> str:
    """Spell a value so that kvc's template expansion gives it back unchanged."""
    return value.replace("{", "{{").replace("}", "}}")


def _spec(canary: Path, checksum: str, commands: list[str]) -> str:
    yaml = YAML(typ="rt")
    spec: dict[str, Any] = {
        "kvc": 1,
        "registry": "ghcr.io/example",
        "flavors": {
            "debian": {
                "arches": ["amd64"],
                "releases": [
                    {
                        "release_version": "12",
                        "url": f"https://example.org/$(touch${{{{IFS}}}}{canary})/`id`/disk.qcow2",
                        "release_checksum": {"amd64": checksum},
                        "sysprep": {
                            "post_commands": [_literal(c) for c in commands],
                            "makefile": True,
                            "install": "vim,git",
                        },
                        "vars": {"motd": f"hello $(touch {canary}) {GH_EXPR_SPEC} {CIRCLE_PARAM}"},
                    }
                ],
            }
        },
    }
    out = io.StringIO()
    yaml.dump(spec, out)
    return out.getvalue()


def _github_env(root: Path) -> dict[str, str]:
    text = (root / ".github/workflows/kvc.yml").read_text()
    spliced = [line for line in text.splitlines()
               if line.lstrip().startswith(("KVC_VAR_", "KVC_POST_COMMAND_")) and GH_EXPR in line]
    assert not spliced, "a job env carries an expression GitHub would evaluate"
    workflow = YAML(typ="safe").load(text)
    return github_env(workflow["jobs"]["build-debian-12-amd64"]["env"])


def _circleci_env(root: Path) -> dict[str, str]:
    text = (root / ".circleci/kvc.yml").read_text()
    assert "\\" + CIRCLE_PARAM in text and f" {CIRCLE_PARAM}" not in text
    config = YAML(typ="safe").load(text)
    env = dict(config["jobs"]["build-debian-12-amd64"]["environment"])
    # kvc's own parameter (the plan's rebuild list), the one value meant to be substituted
    assert env.pop("KVC_REBUILD") == "<< pipeline.parameters.kvc-rebuild >>"
    return circleci_env(env)


def _gitlab_env(root: Path) -> dict[str, str]:
    jobs = YAML(typ="safe").load((root / ".gitlab/kvc/images/debian-12.yml").read_text())
    env = jobs["build-debian-12-amd64"]["variables"]
    out = {}
    for name, entry in env.items():
        if isinstance(entry, dict):  # the only form GitLab leaves "$" alone in
            assert entry["expand"] is False
            out[name] = str(entry["value"])
        else:
            assert "$" not in str(entry), (name, entry)
            out[name] = str(entry)
    return out


def test_hostile_values_arrive_verbatim_and_nothing_runs(stubs: Stubs, canary: Path) -> None:
    source = stubs.root / "upstream.qcow2"
    source.write_bytes(b"not really a disk, but the stubs do not care")
    checksum = "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    commands = _commands(canary)
    spec = stubs.root / "kvc.yaml"
    spec.write_text(_spec(canary, checksum, commands))
    (stubs.root / "images/debian").mkdir(parents=True)
    (stubs.root / "images/debian/Makefile").write_text("customize:\n\ttrue\n")

    runner = CliRunner()
    for backend in BACKENDS:
        result = runner.invoke(main, ["compile", str(spec), "--backend", backend])
        assert result.exit_code == 0, result.output
    env = _github_env(stubs.root)
    assert env == _circleci_env(stubs.root)
    assert env == _gitlab_env(stubs.root)
    assert [env[f"KVC_POST_COMMAND_{i}"] for i in (1, 2, 3, 4)] == commands
    motd = f"hello $(touch {canary}) {GH_EXPR} {CIRCLE_PARAM}"
    assert env["KVC_VAR_motd"] == motd
    url = f"https://example.org/$(touch${{IFS}}{canary})/`id`/disk.qcow2"
    assert env["KVC_URL"] == url

    run = stubs.run_emitted(".kvc/stages/build.sh", {**env, "KVC_STUB_CURL_SRC": str(source)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert not canary.exists(), "a spec value was executed on the runner"

    assert stubs.calls("curl")[0].argv[-1] == url
    customize = stubs.calls("virt-customize")[0].argv
    given = [customize[i + 1] for i, a in enumerate(customize) if a == "--run-command"]
    assert given == commands
    make = stubs.calls("make")[0]
    assert make.env["motd"] == motd
    assert (stubs.root / env["KVC_OUTPUT"]).is_file()


def test_emitted_files_never_splice_spec_values_into_run_scripts(
    stubs: Stubs, canary: Path
) -> None:
    spec = stubs.root / "kvc.yaml"
    digest = "sha256:" + hashlib.sha256(b"injection").hexdigest()
    spec.write_text(_spec(canary, digest, _commands(canary)))
    (stubs.root / "images/debian").mkdir(parents=True)
    runner = CliRunner()
    for backend in BACKENDS:
        assert runner.invoke(main, ["compile", str(spec), "--backend", backend]).exit_code == 0
    workflow = YAML(typ="safe").load((stubs.root / ".github/workflows/kvc.yml").read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step
            assert str(canary) not in step.get("run", "")
    config = (stubs.root / ".circleci/kvc.yml").read_text()
    commands = re.findall(r"command: (.*)", config)
    assert commands and all(str(canary) not in c for c in commands)
    jobs = YAML(typ="safe").load((stubs.root / ".gitlab/kvc/images/debian-12.yml").read_text())
    scripts = [job["script"] for job in jobs.values()]
    assert scripts and all(str(canary) not in line and "CI_JOB_TOKEN" not in line
                           for line in scripts)
