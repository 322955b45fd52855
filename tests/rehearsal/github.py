"""Run an emitted GitHub Actions workflow file on local folders.

Emulated (each against its upstream source, cited):
- jobs in `needs` order; a job whose needs did not all succeed is skipped
  unless its `if:` calls a status function;
- `run:` steps with workflow, job and step env, `bash -e {0}` (GitHub's
  default shell on Linux when `shell:` is unset, docs "jobs.<job_id>.steps[*].shell"),
  GITHUB_ENV / GITHUB_OUTPUT / GITHUB_PATH / GITHUB_STEP_SUMMARY files;
- actions/checkout (a copy of the compiled tree);
- actions/upload-artifact v7: names unique per workflow run across attempts,
  a duplicate fails (409 Conflict) unless `overwrite: true`
  (actions/upload-artifact@v7.0.0:action.yml:37-42, README.md:288;
  the re-run case: apache/datafusion-comet#3723); hidden files skipped
  unless `include-hidden-files` (README.md:77);
- actions/download-artifact v8 by name, extracted directly into `path`
  (actions/download-artifact@v8.0.1:README.md:58,136);
- actions/cache v5: exact key -> cache-hit 'true'; saved by a post step
  only when the job succeeded (actions/cache@v5.0.5:action.yml:38-44);
- "Re-run failed jobs": same run id, run_attempt + 1, failed jobs and their
  dependents run again, the others keep their results, and the earlier
  attempts' artifacts stay (GitHub docs "Re-running workflows and jobs").
Anything else (another action, key, expression) raises RehearsalError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.rehearsal.expr import Evaluator, Open, condition, interpolate, text
from tests.rehearsal.world import (
    JobResult,
    Layer,
    Machine,
    Origin,
    RehearsalError,
    World,
    descendants,
    in_waves,
    mapping,
    only_keys,
    topological,
)

WORKFLOW_KEYS = ("name", "on", "permissions", "concurrency", "env", "jobs")
JOB_KEYS = (
    "name", "needs", "if", "permissions", "runs-on", "timeout-minutes", "env", "steps",
    "environment", "outputs",
)
STEP_KEYS = ("id", "name", "if", "uses", "with", "run", "env", "timeout-minutes")
# Inputs each emulated action accepts; anything else is refused.
ACTIONS = {
    "actions/checkout": ("persist-credentials",),
    "actions/upload-artifact": (
        "name", "path", "if-no-files-found", "retention-days", "compression-level",
        "overwrite", "include-hidden-files",
    ),
    "actions/download-artifact": ("name", "path"),
    "actions/cache": ("path", "key"),
    "docker/setup-buildx-action": (),
    "docker/setup-qemu-action": (),
    "sigstore/cosign-installer": (),
    "actions/attest-build-provenance": (
        "subject-name", "subject-digest", "push-to-registry", "create-storage-record",
    ),
}
SHA = re.compile(r"^([\w.-]+/[\w.-]+)@[0-9a-f]{40}$")


class Artifact(Layer):
    pass


class GitHubRun:
    """One workflow run: attempt 1 by run(), later attempts by rerun_failed()."""

    def __init__(
        self,
        world: World,
        workflow: Path,
        *,
        event: str = "push",
        ref: str = "refs/heads/main",
        secrets: Mapping[str, str] | None = None,
        fork: bool = False,
        run_id: str = "4242",
        inputs: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        workers: int = os.cpu_count() or 2,
    ) -> None:
        self.world, self.workers = world, workers
        self.doc = mapping(YAML(typ="safe").load(workflow), str(workflow))
        only_keys(self.doc, WORKFLOW_KEYS, str(workflow))
        self.jobs = {k: mapping(v, k) for k, v in mapping(self.doc["jobs"], "jobs").items()}
        self.needs = {k: as_list(v.get("needs")) for k, v in self.jobs.items()}
        self.order = topological(self.needs)
        self.event, self.ref, self.run_id = event, ref, run_id
        # GITHUB_TOKEN is in `secrets` on every run (docs "Automatic token
        # authentication"); a fork's pull request gets a read-only one.
        self.secrets = Open({"GITHUB_TOKEN": "ghs_rehearsal", **(secrets or {})})
        self.fork = fork
        self.vars = Open(variables or {})
        self.inputs = self._inputs(inputs or {})
        self.outputs: dict[str, dict[str, str]] = {}
        self.attestations: list[tuple[str, str, str]] = []  # (job, subject, digest)
        self.attempt = 0
        self.artifacts: dict[str, Artifact] = {}
        self.results: dict[str, JobResult] = {}
        self.history: list[JobResult] = []
        # Evaluated once so that an expression there is checked like any other.
        ev = Evaluator(self.contexts(""), lambda n: True)
        for value in mapping(self.doc.get("concurrency"), "concurrency").values():
            interpolate(text(value), ev)

    def _inputs(self, given: Mapping[str, str]) -> Open:
        """`inputs`: workflow_dispatch inputs with their defaults; empty for other events."""
        on = self.doc.get("on")
        on = mapping(on, "on") if isinstance(on, dict) else {}
        declared = mapping(mapping(on.get("workflow_dispatch"), "workflow_dispatch").get(
            "inputs"), "workflow_dispatch.inputs")
        only_keys(given, declared, "workflow_dispatch inputs")
        if self.event != "workflow_dispatch":
            if given:
                raise RehearsalError("inputs are given only to a workflow_dispatch run")
            return Open()
        return Open({k: given.get(k, text(mapping(v, k).get("default")))
                     for k, v in declared.items()})

    def contexts(self, job: str) -> dict[str, Any]:
        """The contexts every expression of JOB may read (docs "Contexts")."""
        needs = {d: {"result": self.results[d].status, "outputs": Open(self.outputs.get(d, {}))}
                 for d in self.needs.get(job, []) if d in self.results}
        return {"github": self.github(job), "secrets": self.secrets, "vars": self.vars,
                "inputs": self.inputs, "needs": needs}

    # --- runs ---------------------------------------------------------------

    def run(self) -> dict[str, str]:
        return self._attempt(set(self.jobs))

    def rerun_failed(self) -> dict[str, str]:
        failed = {j for j, r in self.results.items() if r.status == "failure"}
        if not failed:
            raise RehearsalError("nothing failed: GitHub offers no re-run of failed jobs")
        return self._attempt(descendants(self.needs, failed))

    def _attempt(self, jobs: set[str]) -> dict[str, str]:
        self.attempt += 1

        def one(job: str) -> JobResult:
            self.results[job] = self._job(job)
            return self.results[job]

        self.history.extend(in_waves(self.order, self.needs, jobs, one, self.workers))
        return {j: r.status for j, r in self.results.items()}

    # --- jobs ---------------------------------------------------------------

    def github(self, job: str) -> dict[str, Any]:
        return {
            "event_name": self.event, "ref": self.ref, "run_id": self.run_id,
            "run_attempt": str(self.attempt), "workflow": self.doc.get("name", ""),
            "job": job, "sha": "0" * 40, "repository": "example/images",
            "server_url": "https://github.com", "actor": "octocat",
            # The event payload: properties another event would carry are null.
            "event": Open({"pull_request": {"head": {"repo": {"fork": self.fork}}}}
                          if self.event == "pull_request" else {}),
            "token": "ghs_rehearsal", "workflow_ref":
                f"example/images/.github/workflows/kvc.yml@{self.ref}",
        }

    def _job(self, job: str) -> JobResult:
        spec = self.jobs[job]
        only_keys(spec, JOB_KEYS, f"jobs.{job}")
        machine = Machine(self.world, job, f"{self.run_id}-attempt-{self.attempt}")
        needs_ok = all(self.results[d].status == "success" for d in self.needs[job])
        ev = Evaluator(self.contexts(job), lambda name: {"always": True, "success": needs_ok,
                                               "failure": not needs_ok, "cancelled": False}[name])
        if not condition(spec.get("if", True), ev):
            machine.result.status = "skipped"
            return machine.result
        JobSteps(self, job, spec, machine).run()
        return machine.finish()


class JobSteps:
    """The steps of one job on one machine."""

    def __init__(self, run: GitHubRun, job: str, spec: dict[str, Any], machine: Machine) -> None:
        self.run_, self.job, self.spec, self.m = run, job, spec, machine
        self.steps: dict[str, Any] = {}
        self.known_ids = {s.get("id") for s in spec.get("steps", []) if s.get("id")}
        self.failed = False
        self.post: list[tuple[str, str]] = []  # (cache key, path) saved at the end
        self.files = machine.base / "files"
        self.files.mkdir()
        self.env: dict[str, str] = {}
        self.path_extra: list[str] = []

    def evaluator(self, extra_env: Mapping[str, str]) -> Evaluator:
        steps = Open({k: v for k, v in self.steps.items()})
        for known in self.known_ids:
            steps.setdefault(known, None)
        contexts = {
            **self.run_.contexts(self.job),
            "env": Open(extra_env), "steps": steps, "runner": {"temp": str(self.m.tmp)},
        }
        return Evaluator(contexts, lambda n: {"always": True, "success": not self.failed,
                                              "failure": self.failed, "cancelled": False}[n])

    def run(self) -> None:
        base = {**self.m.env(), "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(self.m.tmp),
                "GITHUB_WORKSPACE": str(self.m.work)}
        base.update({f"GITHUB_{k.upper()}": text(v) for k, v in self.run_.github(self.job).items()})
        for scope in (self.run_.doc.get("env"), self.spec.get("env")):
            for k, v in mapping(scope, "env").items():
                self.env[k] = interpolate(text(v), self.evaluator(self.env))
        for i, step in enumerate(self.spec.get("steps", [])):
            self.step(i, mapping(step, f"{self.job}.steps[{i}]"), base)
        for key, path in self.post:
            if not self.failed and key not in self.run_.world.caches:
                origin = Origin(self.job, self.m.result.run)
                self.run_.world.caches[key] = Layer(self.m.collect(path), origin)
        ev = self.evaluator(self.env)
        self.run_.outputs[self.job] = {
            k: interpolate(text(v), ev) for k, v in mapping(self.spec.get("outputs"), "o").items()}
        if self.failed:
            self.m.result.status = "failure"

    def step(self, i: int, step: dict[str, Any], base: dict[str, str]) -> None:
        where = f"{self.job}.steps[{i}]"
        only_keys(step, STEP_KEYS, where)
        env = dict(self.env)
        for k, v in mapping(step.get("env"), where).items():
            env[k] = interpolate(text(v), self.evaluator(env))
        ev = self.evaluator(env)
        if not condition(step.get("if", True), ev):
            self.m.note(f"{where}: skipped")
            return
        ok = self.action(step, ev, where) if "uses" in step else self.shell(step, env, base)
        self.failed = self.failed or not ok

    def shell(self, step: dict[str, Any], env: dict[str, str], base: dict[str, str]) -> bool:
        script = interpolate(str(step["run"]), self.evaluator(env))
        n = len(self.steps) + len(self.m.result.log)
        files = {k: self.files / f"{k}.{n}" for k in ("ENV", "OUTPUT", "PATH", "STEP_SUMMARY")}
        for f in files.values():
            f.write_text("")
        full = {**base, **env, **{f"GITHUB_{k}": str(p) for k, p in files.items()}}
        full["PATH"] = ":".join([*self.path_extra, full["PATH"]])
        script_file = self.m.tmp / f"step{n}.sh"
        script_file.write_text(script)
        rc = self.m.shell(["bash", "-e", str(script_file)], full)
        self.env.update(parse_env_file(files["ENV"].read_text()))
        self.path_extra = [*files["PATH"].read_text().split(), *self.path_extra]
        if step.get("id"):
            self.steps[step["id"]] = {"outputs": Open(parse_env_file(files["OUTPUT"].read_text())),
                                      "outcome": "success" if rc == 0 else "failure"}
        return rc == 0

    def action(self, step: dict[str, Any], ev: Evaluator, where: str) -> bool:
        m = SHA.match(str(step["uses"]))
        if not m or m.group(1) not in ACTIONS:
            raise RehearsalError(f"{where}: action {step['uses']!r} not emulated (or not pinned)")
        name = m.group(1)
        inputs = {k: interpolate(text(v), ev) for k, v in mapping(step.get("with"), where).items()}
        only_keys(inputs, ACTIONS[name], f"{where} ({name})")
        outputs: dict[str, str] = {}
        ok = getattr(self, "act_" + name.split("/")[1].replace("-", "_"))(inputs, outputs)
        if step.get("id"):
            self.steps[step["id"]] = {"outputs": Open(outputs)}
        return bool(ok)

    # --- actions ------------------------------------------------------------

    def act_checkout(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        self.m.checkout()
        return True

    def act_upload_artifact(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        name = inputs.get("name", "artifact")
        if "\n" in inputs["path"].strip() or any(c in inputs["path"] for c in "*?!"):
            raise RehearsalError(f"upload-artifact: path {inputs['path']!r} is not emulated")
        hidden = inputs.get("include-hidden-files", "false") == "true"
        files = self.m.collect(inputs["path"].strip(), hidden=hidden)
        if not files:
            mode = inputs.get("if-no-files-found", "warn")
            self.m.note(f"upload-artifact {name}: no files found ({mode})")
            return mode != "error"
        if name in self.run_.artifacts and inputs.get("overwrite", "false") != "true":
            self.m.note(f"upload-artifact {name}: Failed to CreateArtifact: (409) Conflict: "
                        "an artifact with this name already exists on the workflow run")
            return False
        self.run_.artifacts[name] = Artifact(files, Origin(self.job, self.m.result.run))
        return True

    def act_download_artifact(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        name = inputs.get("name")
        if not name:
            raise RehearsalError("download-artifact without a name is not emulated")
        artifact = self.run_.artifacts.get(name)
        if artifact is None:
            self.m.note(f"download-artifact {name}: Artifact not found")
            return False
        self.m.receive(inputs.get("path", "."), artifact)
        return True

    def act_cache(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        key, path = inputs["key"], inputs["path"].strip()
        hit = self.run_.world.caches.get(key)
        if hit:
            self.m.receive(path, hit)
        outputs["cache-hit"] = "true" if hit else "false"
        self.post.append((key, path))
        return True

    def act_setup_buildx_action(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        return True

    def act_setup_qemu_action(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        return True

    def act_attest_build_provenance(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        """Attest SUBJECT@DIGEST: it must be a well-formed digest already in the registry."""
        subject, digest = inputs["subject-name"], inputs.get("subject-digest", "")
        registry = self.run_.world.state / "registry.txt"
        known = registry.read_text().split() if registry.exists() else []
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest) or f"{subject}@{digest}" not in known:
            self.m.note(f"attest-build-provenance: {subject}@{digest!r} is not in the registry")
            return False
        self.run_.attestations.append((self.job, subject, digest))
        return True

    def act_cosign_installer(self, inputs: dict[str, str], outputs: dict[str, str]) -> bool:
        return True  # cosign is a fake tool on PATH already


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def parse_env_file(content: str) -> dict[str, str]:
    """NAME=value lines and NAME<<DELIM heredocs, as the runner reads them."""
    out: dict[str, str] = {}
    lines = content.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        elif line.strip():
            raise RehearsalError(f"malformed line in a GITHUB_ENV/OUTPUT file: {line!r}")
        i += 1
    return out
