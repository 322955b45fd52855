"""The plan stage against a real registry: Debian's docker-registry, images built by buildah.

Each image of the spec is published (or not) in the state one decision needs:
the same fingerprint, another one, nothing, an old creation date, a tag left
behind by a publish that stopped half way, a multi-arch index. plan.sh reads
them over HTTP exactly as on CI, through `kvc plan --changed`.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.cli import main
from kvc.commands.plan import decide
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.ir import Pipeline
from tests.backends.expressions import circleci_started, github_started

from .conftest import Registry, free_port, require, run, serve_registry

pytestmark = pytest.mark.integration

CHECKSUM = "sha256:" + "ab12" * 16
FLAVORS = ("same", "changed", "absent", "stale", "partial", "index")


def spec_text(registry: str) -> str:
    releases = "".join(
        f"  {flavor}:\n"
        f"    releases:\n"
        f"      - release_version: \"1\"\n"
        f"        url: https://example.invalid/{flavor}-{{arch}}.qcow2\n"
        f"        release_checksum: {{amd64: \"{CHECKSUM}\", arm64: \"{CHECKSUM}\"}}\n"
        + ("        publish: {tags: ['1', moving]}\n" if flavor == "partial" else "")
        + ("        publish: {refresh: 7d}\n" if flavor == "stale" else "")
        for flavor in FLAVORS)
    return (f"kvc: 1\nregistry: {registry}/kvc\n"
            "defaults: {arches: [amd64], test: {enabled: false}}\n"
            f"flavors:\n{releases}")


def buildah(storage: Path, *args: str) -> str:
    return run(["buildah", "--root", str(storage / "root"), "--runroot", str(storage / "run"),
                "--storage-driver", "vfs", *args]).stdout.strip()


def push_image(storage: Path, ref: str, labels: dict[str, str], arch: str = "amd64") -> str:
    """A scratch image with ``labels`` pushed to ``ref``; returns the local image id."""
    container = buildah(storage, "from", "--arch", arch, "scratch")
    args = [f"--label={key}={value}" for key, value in labels.items()]
    buildah(storage, "config", *args, container)
    image = buildah(storage, "commit", "--quiet", container)
    buildah(storage, "push", "--tls-verify=false", image, f"docker://{ref}")
    return image


@pytest.fixture
def published(registry: Registry, tmp_path: Path) -> Pipeline:
    """The spec's images in the registry, each in the state its name says."""
    require("buildah", "skopeo")
    spec = tmp_path / "kvc.yaml"
    spec.write_text(spec_text(registry.host), encoding="utf-8")
    pipeline = build_pipeline(load(spec))
    fp = {t.flavor: t.fingerprint for t in pipeline.targets}
    repo = {t.flavor: t.repository for t in pipeline.targets}
    storage = tmp_path / "buildah"
    fresh = "2099-01-01T00:00:00Z"  # never older than a refresh age
    push_image(storage, f"{repo['same']}:1", _labels(fp["same"], fresh))
    push_image(storage, f"{repo['changed']}:1", _labels("0" * 20, fresh))
    push_image(storage, f"{repo['stale']}:1", _labels(fp["stale"], "2000-01-01T00:00:00Z"))
    # The first tag moved to the new image, the second still names the old one.
    push_image(storage, f"{repo['partial']}:moving", _labels("1" * 20, fresh))
    push_image(storage, f"{repo['partial']}:1", _labels(fp["partial"], fresh))
    buildah(storage, "manifest", "create", "kvc-index")
    for arch in ("amd64", "arm64"):
        image = push_image(storage, f"{repo['index']}:{arch}", _labels(fp["index"], fresh), arch)
        buildah(storage, "manifest", "add", "kvc-index", image)
    buildah(storage, "manifest", "push", "--all", "--tls-verify=false", "kvc-index",
            f"docker://{repo['index']}:1")
    (tmp_path / "spec").write_text(str(spec), encoding="utf-8")
    return pipeline


def _labels(fingerprint: str, created: str) -> dict[str, str]:
    return {"dev.kvc.fingerprint": fingerprint, "org.opencontainers.image.created": created}


def by_image(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(row["image"]).split("/")[0]: row for row in rows}


def test_each_reason_to_run_or_skip(published: Pipeline) -> None:
    rows = by_image(decide(published))
    runs = {name: row["run"] for name, row in rows.items()}
    assert runs == {"same": False, "changed": True, "absent": True, "stale": True,
                    "partial": True, "index": False}
    assert str(rows["same"]["reason"]).startswith("unchanged")
    assert str(rows["changed"]["reason"]).startswith("changed: published fingerprint 0000")
    assert str(rows["absent"]["reason"]).startswith("not published yet")
    assert str(rows["stale"]["reason"]).startswith("refresh due: published 2000-01-01")
    assert "last publish incomplete" in str(rows["partial"]["reason"])
    fingerprints = {t.flavor: t.fingerprint for t in published.targets}
    assert {name: row["fingerprint"] for name, row in rows.items()} == fingerprints


def test_forced_images_run_whatever_the_registry_says(published: Pipeline) -> None:
    rows = by_image(decide(published, "same/1, index-1"))
    assert rows["same"]["run"] is True and rows["same"]["reason"] == "forced (KVC_FORCE)"
    assert rows["index"]["run"] is True
    assert all(row["run"] for row in decide(published, "all"))


def test_cli_json_lists_every_image(published: Pipeline, tmp_path: Path) -> None:
    spec = (tmp_path / "spec").read_text(encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", spec, "--changed", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [set(row) for row in rows] == [{"image", "run", "reason", "fingerprint"}] * 6
    assert {row["image"]: row["run"] for row in rows}["same/1"] is False


def test_unreachable_registry_runs_everything(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(spec_text(f"127.0.0.1:{free_port()}"), encoding="utf-8")
    rows = decide(build_pipeline(load(spec)))
    assert len(rows) == len(FLAVORS)
    for row in rows:
        assert row["run"] is True
        assert str(row["reason"]).startswith("registry unreadable, running (fail open)")


# -- the emitted pipelines, end to end: the plan step as emitted, then the gates --

IMAGES = ("one", "two", "three")


def small_spec(registry: str) -> str:
    releases = "".join(
        f"  {flavor}:\n    releases:\n      - release_version: \"1\"\n"
        f"        url: https://example.invalid/{flavor}-{{arch}}.qcow2\n"
        f"        release_checksum: {{amd64: \"{CHECKSUM}\", arm64: \"{CHECKSUM}\"}}\n"
        for flavor in IMAGES)
    return f"kvc: 1\nregistry: {registry}/kvc\nflavors:\n{releases}"


def compile_tree(root: Path, registry: str, backend: str) -> Pipeline:
    root.mkdir(parents=True, exist_ok=True)
    (root / "kvc.yaml").write_text(small_spec(registry), encoding="utf-8")
    result = CliRunner().invoke(main, ["compile", str(root / "kvc.yaml"), "--backend", backend,
                                       "--out", str(root)])
    assert result.exit_code == 0, result.output
    return build_pipeline(load(root / "kvc.yaml"))


def github_run(root: Path, force: str, *,
               unreadable: bool = False) -> tuple[set[str], str]:
    """The emitted plan job's step in bash, then which jobs GitHub would start.

    UNREADABLE: the registry cannot be read, so every image runs without the cache."""
    doc = parse(root / ".github/workflows/kvc.yml")
    plan = doc["jobs"]["plan"]
    env = {k: ("" if v == "${{ inputs.force }}" else v) for k, v in plan["env"].items()}
    assert plan["env"]["KVC_FORCE"] == "${{ inputs.force }}"
    env["KVC_FORCE"] = force
    output, summary = root / "github-output", root / "summary.md"
    for path in (output, summary):
        path.write_text("", encoding="utf-8")
    (step,) = [s for s in plan["steps"] if s.get("id") == "plan"]
    bash(root, step["run"], {**env, "GITHUB_OUTPUT": str(output),
                              "GITHUB_STEP_SUMMARY": str(summary)})
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert plan["outputs"] == {"images": "${{ steps.plan.outputs.images }}",
                               "rebuild": "${{ steps.plan.outputs.rebuild }}"}
    # only forced images skip the build cache (nothing here is due for a refresh),
    # or every image when the plan could not read the registry
    forced = {t.strip().replace("/", "-") for t in force.split(",") if t.strip()}
    running = {s for s in outputs["images"].split(",") if s}
    expected = running if "all" in forced or unreadable else forced
    assert {s for s in outputs["rebuild"].split(",") if s} == expected, outputs
    started = github_started(doc, {"github.event_name": "push", "github.ref": "refs/heads/main"},
                             {"plan": outputs})
    return started, summary.read_text(encoding="utf-8")


def circleci_run(root: Path, force: str) -> set[str]:
    """The setup job's plan step in bash, then which continuation jobs CircleCI would start."""
    setup = parse(root / ".circleci/config.yml")
    assert setup["setup"] is True and setup["workflows"] == {"plan": {"jobs": ["plan"]}}
    job = setup["jobs"]["plan"]
    assert job["environment"]["KVC_FORCE"] == "<< pipeline.parameters.force >>"
    env = {**job["environment"], "KVC_FORCE": force}
    (run_step,) = [s["run"] for s in job["steps"] if isinstance(s, dict) and "run" in s]
    bash(root, run_step["command"], env)
    (cont,) = [s["continuation/continue"] for s in job["steps"]
               if isinstance(s, dict) and "continuation/continue" in s]
    parameters = json.loads((root / cont["parameters"]).read_text(encoding="utf-8"))
    continuation = parse(root / cont["configuration_path"])
    values = {f"pipeline.parameters.{k}": str(v) for k, v in parameters.items()}
    values["pipeline.trigger_source"] = "webhook"
    return {"plan"} | circleci_started(continuation, values)


def bash(root: Path, command: str, env: dict[str, str]) -> None:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=root,
                            env={**os.environ, **env}, capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stderr


def parse(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def jobs_of(pipeline: Pipeline, *flavors: str) -> set[str]:
    return {job.id for job in pipeline.jobs if job.image.split("/")[0] in flavors}


@pytest.mark.parametrize("backend", ["github", "circleci"])
def test_emitted_pipeline_runs_only_what_changed(registry: Registry, tmp_path: Path,
                                                 backend: str) -> None:
    require("buildah", "skopeo")
    root = tmp_path / "repo"
    pipeline = compile_tree(root, registry.host, backend)
    fp = {t.flavor: t.fingerprint for t in pipeline.targets}
    storage = tmp_path / "buildah"
    fresh = "2099-01-01T00:00:00Z"

    def started(force: str = "") -> set[str]:
        if backend == "github":
            jobs, summary = github_run(root, force)
            assert "| Image | Decision | Reason | Fingerprint |" in summary
            return jobs
        return circleci_run(root, force)

    for flavor in IMAGES:  # all published as they are now, except "two"
        fingerprint = fp[flavor] if flavor != "two" else "9" * 20
        push_image(storage, f"{registry.host}/kvc/{flavor}:1", _labels(fingerprint, fresh))
    # A one-image change runs exactly that image's jobs (and the plan).
    assert started() == {"plan"} | jobs_of(pipeline, "two")
    # Forcing runs every image; forcing one runs that one.
    assert started("all") == {"plan"} | jobs_of(pipeline, *IMAGES)
    assert started("one/1") == {"plan"} | jobs_of(pipeline, "one", "two")
    # An unchanged push runs only the plan.
    push_image(storage, f"{registry.host}/kvc/two:1", _labels(fp["two"], fresh))
    assert started() == {"plan"}


@pytest.mark.parametrize("backend", ["github", "circleci"])
def test_emitted_pipeline_runs_everything_when_the_registry_is_unreachable(
        tmp_path: Path, backend: str) -> None:
    root = tmp_path / "repo"
    pipeline = compile_tree(root, f"127.0.0.1:{free_port()}", backend)
    if backend == "github":
        jobs, summary = github_run(root, "", unreadable=True)
        assert "registry unreadable, running (fail open)" in summary
    else:
        jobs = circleci_run(root, "")
    assert jobs == {"plan"} | jobs_of(pipeline, *IMAGES)


# -- a private registry: the plan reads labels with the pull credentials --------

PULL_USER = "kvc-reader"
PULL_PASSWORD = "read-only \"quoted\" \\ pass"


def bcrypt_hash(password: str) -> str:
    """docker-registry's htpasswd wants bcrypt; the standard library's crypt makes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # noqa: PLC0415 - deprecated, only here
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    """One image published to a registry that answers nothing without a login
    (htpasswd: WWW-Authenticate: Basic), with its current fingerprint."""
    require("buildah", "skopeo")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{PULL_USER}:{bcrypt_hash(PULL_PASSWORD)}\n", encoding="utf-8")
    auth = f"auth: {{htpasswd: {{realm: kvc-test, path: {htpasswd}}}}}\n"
    with serve_registry(tmp_path / "registry", auth) as served:
        spec = tmp_path / "kvc.yaml"
        spec.write_text(spec_text(served.host), encoding="utf-8")
        pipeline = build_pipeline(load(spec))
        target = next(t for t in pipeline.targets if t.flavor == "same")
        storage = tmp_path / "buildah"
        container = buildah(storage, "from", "scratch")
        buildah(storage, "config", f"--label=dev.kvc.fingerprint={target.fingerprint}",
                "--label=org.opencontainers.image.created=2099-01-01T00:00:00Z", container)
        image = buildah(storage, "commit", "--quiet", container)
        buildah(storage, "push", "--tls-verify=false", f"--creds={PULL_USER}:{PULL_PASSWORD}",
                image, f"docker://{target.repository}:1")
        yield pipeline, served.host


def test_a_private_image_is_read_with_the_pull_credentials(
        private: tuple[Pipeline, str], monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, host = private
    monkeypatch.setenv("KVC_PULL_USER", PULL_USER)
    monkeypatch.setenv("KVC_PULL_PASSWORD", PULL_PASSWORD)
    monkeypatch.setenv("KVC_PULL_REGISTRY", host)
    rows = by_image(decide(pipeline))
    assert rows["same"]["run"] is False, rows["same"]
    assert str(rows["same"]["reason"]).startswith("unchanged")
    assert str(rows["absent"]["reason"]).startswith("not published yet")


def test_a_private_image_without_credentials_runs_and_says_why(
        private: tuple[Pipeline, str], monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, _host = private
    for name in ("KVC_PULL_USER", "KVC_PULL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    rows = by_image(decide(pipeline))
    assert rows["same"]["run"] is True
    assert "asks for a login and no pull credentials" in str(rows["same"]["reason"])
    # credentials for another registry are never sent here
    monkeypatch.setenv("KVC_PULL_USER", PULL_USER)
    monkeypatch.setenv("KVC_PULL_PASSWORD", PULL_PASSWORD)
    monkeypatch.setenv("KVC_PULL_REGISTRY", "elsewhere.invalid")
    assert by_image(decide(pipeline))["same"]["run"] is True
