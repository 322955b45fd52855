"""Run an emitted CircleCI config on local folders.

Emulated (cited from circleci/circleci-docs@9734a14):
- one workflow's jobs in `requires` order, branch `filters`, contexts as env;
- env precedence step > job (and its executor) > built-ins > context
  (docs/guides/modules/security/pages/env-vars.adoc:39-46);
- `run` with `/bin/bash -eo pipefail` (configuration-reference.adoc:1707) and
  BASH_ENV sourced by every later step (env-vars.adoc:70-73); `when`;
- reusable `commands` with `<< parameters.x >>`;
- workspaces: additive layers; attach sees only upstream jobs' layers, applied
  in workflow order, and the same file from two concurrent (unordered) jobs is
  an error; a rerun inherits the workspace (workspaces.adoc:15-27) and keeps
  CIRCLE_WORKFLOW_WORKSPACE_ID (variables.adoc:217) while CIRCLE_WORKFLOW_ID
  changes ("Rerun failed jobs actually creates a new workflow":
  percy/python-percy-client#45);
- restore_cache by key prefix (configuration-reference.adoc:2244), save_cache
  immutable per key (configuration-reference.adoc:2137), store_artifacts.
Anything else raises RehearsalError.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.rehearsal.expr import text
from tests.rehearsal.world import (
    JobResult,
    Layer,
    Machine,
    Origin,
    RehearsalError,
    World,
    ancestors,
    descendants,
    in_waves,
    mapping,
    only_keys,
    topological,
)

TOP_KEYS = ("version", "executors", "commands", "jobs", "workflows")
JOB_KEYS = ("executor", "environment", "steps")
ENTRY_KEYS = ("requires", "context", "filters")
RUN_KEYS = ("name", "command", "no_output_timeout", "environment", "when")
PARAM = re.compile(r"<<\s*parameters\.([\w-]+)\s*>>")
PIPELINE = re.compile(r"<<\s*pipeline\.([\w.-]+)\s*>>")
LEFTOVER = re.compile(r"<<\s*[\w-]+\.[\w.-]+\s*>>")


class CircleRun:
    """One pipeline: run() the workflow, then rerun_from_failed() as often as needed."""

    def __init__(
        self,
        world: World,
        config: Path,
        *,
        branch: str = "main",
        contexts: Mapping[str, Mapping[str, str]] | None = None,
        replace_steps: Mapping[str, str] | None = None,
        workflow: str = "kvc",
        workers: int = os.cpu_count() or 2,
        pipeline: str = "p1",
    ) -> None:
        self.world, self.workers = world, workers
        self.branch = branch
        # A push: no schedule, so pipeline.schedule.name is empty.
        self.pipeline = {"trigger_source": "webhook", "git.branch": branch, "schedule.name": ""}
        doc = mapping(YAML(typ="safe").load(config), str(config))
        # A setup config (`setup: true`) runs its one workflow, whose job continues
        # the pipeline with another config and parameters (circleci/continuation).
        self.setup: dict[str, Any] | None = doc if doc.get("setup") else None
        self.continued: tuple[Path, dict[str, Any]] | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.load(doc, [workflow] if self.setup is None else list(doc["workflows"]), str(config))
        self.branch = branch
        self.contexts = contexts or {}
        self.replace_steps = dict(replace_steps or {})
        self.pipeline_id = pipeline
        self.workspace_id = f"{pipeline}-ws"
        self.workflows: list[str] = []
        self.layers: dict[str, Layer] = {}
        self.stored: dict[tuple[str, str], dict[str, bytes]] = {}
        self.results: dict[str, JobResult] = {}
        self.history: list[JobResult] = []

    def load(self, doc: dict[str, Any], workflows: list[str], where: str) -> None:
        """Make DOC's enabled WORKFLOWS the jobs to run (merged: their names are unique)."""
        self.doc = doc
        only_keys(doc, (*TOP_KEYS, "setup", "orbs", "parameters"), where)
        params = mapping(doc.get("parameters"), "parameters")
        for k, v in params.items():
            self.pipeline.setdefault(f"parameters.{k}", text(mapping(v, k).get("default")))
        self.enabled = False
        for name in workflows:
            wf = mapping(mapping(doc["workflows"], "workflows")[name], name)
            only_keys(wf, ("jobs", "when"), f"workflows.{name}")
            if not logic(substitute(wf.get("when", True), {}, name, self.pipeline)):
                continue
            self.enabled = True
            for item in wf["jobs"]:
                job, entry = (item, {}) if isinstance(item, str) else next(iter(item.items()))
                only_keys(mapping(entry, job), ENTRY_KEYS, f"workflow job {job}")
                self.entries[job] = entry or {}
        self.needs = {j: list(e.get("requires", [])) for j, e in self.entries.items()}
        self.order = topological(self.needs)

    def continue_pipeline(self) -> None:
        """After the setup workflow: load the continuation config with its parameters."""
        if self.continued is None:
            raise RehearsalError("the setup workflow did not continue the pipeline")
        config, params = self.continued
        doc = mapping(YAML(typ="safe").load(config), str(config))
        declared = mapping(doc.get("parameters"), "parameters")
        only_keys(params, declared, "continuation parameters")
        self.pipeline.update({f"parameters.{k}": text(v) for k, v in params.items()})
        self.setup_entries = dict(self.entries)
        self.entries = {}
        # `version: 2` configs may carry `workflows: {version: 2}`: not a workflow.
        names = [n for n in mapping(doc.get("workflows"), "workflows") if n != "version"]
        self.load(doc, names, str(config))
        if names and not self.enabled:
            raise RehearsalError(f"{config}: All Workflows have been filtered from this "
                                 "Pipeline (CircleCI fails the pipeline)")
        # The setup job ran before every continued job; keep it in the graph.
        self.entries.update(self.setup_entries)
        self.needs.update({j: [] for j in self.setup_entries})
        self.order = topological(self.needs)

    @property
    def workflow_id(self) -> str:
        return self.workflows[-1]

    def run(self) -> dict[str, str]:
        if self.setup is not None:
            self._workflow(set(self.entries))
            if self.results and all(r.status == "success" for r in self.results.values()):
                self.continue_pipeline()
                return self._workflow(set(self.entries) - set(self.setup_entries))
            return {j: r.status for j, r in self.results.items()}
        return self._workflow(set(self.entries))

    def rerun_from_failed(self) -> dict[str, str]:
        failed = {j for j, r in self.results.items() if r.status == "failure"}
        if not failed:
            raise RehearsalError("nothing failed: no rerun from failed")
        return self._workflow(descendants(self.needs, failed))

    def _workflow(self, jobs: set[str]) -> dict[str, str]:
        self.workflows.append(f"{self.pipeline_id}-wf-{len(self.workflows) + 1}")
        if not self.enabled:
            return {}

        def one(job: str) -> JobResult:
            self.results[job] = self._job(job)
            return self.results[job]

        selected = {j for j in jobs if self._selected(j)}
        self.history.extend(in_waves(self.order, self.needs, selected, one, self.workers))
        return {j: r.status for j, r in self.results.items()}

    def _selected(self, job: str) -> bool:
        filters = mapping(self.entries[job].get("filters"), f"{job}.filters")
        only_keys(filters, ("branches",), f"{job}.filters")
        branches = mapping(filters.get("branches"), f"{job}.filters.branches")
        only_keys(branches, ("only", "ignore"), f"{job}.filters.branches")
        if "only" in branches and self.branch not in as_list(branches["only"]):
            return False
        return self.branch not in as_list(branches.get("ignore"))

    def _job(self, job: str) -> JobResult:
        machine = Machine(self.world, job, self.workflow_id)
        upstream = [self.results.get(d) for d in self.needs[job]]
        if any(r is None or r.status != "success" for r in upstream):
            machine.result.status = "skipped"  # blocked: never runs
            return machine.result
        JobSteps(self, job, machine).run()
        return machine.finish()

    def env_for(self, job: str, machine: Machine) -> dict[str, str]:
        spec = mapping(self.doc["jobs"][job], job)
        only_keys(spec, JOB_KEYS, f"jobs.{job}")
        env = machine.env()
        for name in as_list(self.entries[job].get("context")):
            if name not in self.contexts:
                raise RehearsalError(f"{job}: context {name!r} is not provided to the rehearsal")
            env.update(self.contexts[name])
        env.update({
            "CIRCLECI": "true", "CIRCLE_BRANCH": self.branch, "CIRCLE_SHA1": "0" * 40,
            "CIRCLE_JOB": job, "CIRCLE_WORKFLOW_ID": self.workflow_id,
            "CIRCLE_WORKFLOW_WORKSPACE_ID": self.workspace_id,
            "CIRCLE_BUILD_NUM": str(len(self.history) + 1),
            "CIRCLE_REPOSITORY_URL": "git@github.com:example/images.git",
            # Built-in ids (https://circleci.com/docs/guides/toolkit/how-to-find-ids):
            # publish verifies its signature against the org's issuer and the project.
            "CIRCLE_ORGANIZATION_ID": "00000000-0000-4000-8000-00000000000a",
            "CIRCLE_PROJECT_ID": "00000000-0000-4000-8000-00000000000b",
            "CIRCLE_WORKING_DIRECTORY": str(machine.work),
            "BASH_ENV": str(machine.base / "bash_env"),
        })
        executor = mapping(mapping(self.doc.get("executors"), "executors")[spec["executor"]], "ex")
        only_keys(executor, ("machine", "resource_class", "environment"), spec["executor"])
        only_keys(mapping(executor["machine"], "machine"), ("image",), "machine")
        env.update({k: str(v) for k, v in mapping(executor.get("environment"), "env").items()})
        job_env = substitute(mapping(spec.get("environment"), job), {}, job, self.pipeline)
        env.update({k: text(v) for k, v in job_env.items()})
        return env


class JobSteps:
    def __init__(self, run: CircleRun, job: str, machine: Machine) -> None:
        self.run_, self.job, self.m = run, job, machine
        self.env = run.env_for(job, machine)
        Path(self.env["BASH_ENV"]).write_text("")
        self.failed = False

    def run(self) -> None:
        steps = self.expand(self.run_.doc["jobs"][self.job]["steps"], {}, f"jobs.{self.job}")
        for i, step in enumerate(steps):
            self.step(step, f"{self.job}.steps[{i}]")
        if self.failed:
            self.m.result.status = "failure"

    def expand(self, steps: list[Any], params: dict[str, Any], where: str) -> list[Any]:
        """Inline reusable commands, substituting their parameters."""
        commands = mapping(self.run_.doc.get("commands"), "commands")
        out: list[Any] = []
        for raw in steps:
            step = substitute(raw, params, where, self.run_.pipeline)
            name = step if isinstance(step, str) else next(iter(step))
            if name in commands:
                cmd = mapping(commands[name], name)
                only_keys(cmd, ("description", "parameters", "steps"), f"commands.{name}")
                args = {} if isinstance(step, str) else mapping(step[name], name)
                declared = mapping(cmd.get("parameters"), name)
                only_keys(args, declared, f"{where}: {name} arguments")
                values = {k: args.get(k, mapping(v, k).get("default")) for k, v in declared.items()}
                out.extend(self.expand(cmd["steps"], values, f"commands.{name}"))
            else:
                out.append(step)
        return out

    def step(self, step: Any, where: str) -> None:
        kind = step if isinstance(step, str) else next(iter(step))
        body = {} if isinstance(step, str) else step[kind]
        handler = getattr(self, "do_" + kind.replace("/", "_"), None)
        if handler is None:
            raise RehearsalError(f"{where}: step {kind!r} is not emulated")
        if kind != "run":
            body = dict(mapping(body, where)) if body else {}
            when = body.pop("when", "on_success")
            if when not in ("on_success", "always", "on_fail"):
                raise RehearsalError(f"{where}: when {when!r} is not emulated")
            # store_artifacts runs after a failed step whatever its `when`
            # (configuration-reference.adoc:1822); other steps obey `when`.
            runs = (kind == "store_artifacts" or when == "always"
                    or (when == "on_fail") == self.failed)
            if not runs:
                return
        ok = handler(body, where)
        self.failed = self.failed or not ok

    def do_checkout(self, body: Any, where: str) -> bool:
        self.m.checkout()
        return True

    def do_run(self, body: Any, where: str) -> bool:
        spec = {"command": body} if isinstance(body, str) else mapping(body, where)
        only_keys(spec, RUN_KEYS, where)
        when = spec.get("when", "on_success")
        if when not in ("on_success", "always", "on_fail"):
            raise RehearsalError(f"{where}: when {when!r} is not emulated")
        if (when == "on_success" and self.failed) or (when == "on_fail" and not self.failed):
            return True
        name = spec.get("name", "")
        if name in self.run_.replace_steps:
            self.m.note(f"{where}: {name!r} replaced: {self.run_.replace_steps[name]}")
            return True
        step_env = mapping(spec.get("environment"), where)
        env = {**self.env, **{k: str(v) for k, v in step_env.items()}}
        script = self.m.tmp / f"step-{len(self.m.result.log)}.sh"
        script.write_text(str(spec["command"]))
        return self.m.shell(["/bin/bash", "-eo", "pipefail", str(script)], env) == 0

    def do_continuation_continue(self, body: Any, where: str) -> bool:
        """circleci/continuation's continue: the config and parameters for the pipeline."""
        spec = mapping(body, where)
        only_keys(spec, ("configuration_path", "parameters"), where)
        params = json.loads((self.m.work / str(spec["parameters"])).read_text())
        self.run_.continued = (self.m.work / str(spec["configuration_path"]), params)
        return True

    def do_persist_to_workspace(self, body: Any, where: str) -> bool:
        spec = mapping(body, where)
        only_keys(spec, ("root", "paths"), where)
        files: dict[str, bytes] = {}
        root = str(spec["root"])
        for path in as_list(spec["paths"]):
            found = self.m.collect(f"{root}/{path}")
            if not found:
                self.m.note(f"{where}: nothing at {path} to persist")
                return False
            rel = path if (self.m.work / root / path).is_dir() else str(Path(path).parent)
            files.update({str(Path(rel) / k): v for k, v in found.items()})
        self.run_.layers[self.job] = Layer(files, Origin(self.job, self.m.result.run))
        return True

    def do_attach_workspace(self, body: Any, where: str) -> bool:
        spec = mapping(body, where)
        only_keys(spec, ("at",), where)
        upstream = ancestors(self.run_.needs, self.job)
        owner: dict[str, str] = {}
        for producer in self.run_.order:
            layer = self.run_.layers.get(producer)
            if producer not in upstream or layer is None:
                continue
            for rel in layer.files:
                prev = owner.get(rel)
                if prev and prev not in ancestors(self.run_.needs, producer):
                    self.m.note(f"{where}: {rel} persisted by concurrent jobs {prev} and "
                                f"{producer}: attaching the workspace fails")
                    return False
                owner[rel] = producer
            self.m.receive(str(spec["at"]), layer)
        return True

    def do_store_artifacts(self, body: Any, where: str) -> bool:
        spec = mapping(body, where)
        only_keys(spec, ("path", "destination"), where)
        key = (str(spec.get("destination", spec["path"])), self.m.result.run)
        self.run_.stored[key] = self.m.collect(str(spec["path"]))
        return True

    def do_restore_cache(self, body: Any, where: str) -> bool:
        spec = mapping(body, where)
        only_keys(spec, ("keys", "key"), where)
        caches = self.run_.world.caches
        for key in as_list(spec.get("keys", spec.get("key"))):
            found = [k for k in caches if k.startswith(key)]
            if found:
                self.m.receive(".", caches[found[-1]])
                return True
        return True

    def do_save_cache(self, body: Any, where: str) -> bool:
        spec = mapping(body, where)
        only_keys(spec, ("key", "paths"), where)
        key = str(spec["key"])
        if key in self.run_.world.caches:
            return True  # caches are immutable per key
        files: dict[str, bytes] = {}
        for path in as_list(spec["paths"]):
            files.update({f"{path}/{k}": v for k, v in self.m.collect(path).items()})
        self.run_.world.caches[key] = Layer(files, Origin(self.job, self.m.result.run))
        return True


def substitute(
    value: Any, params: Mapping[str, Any], where: str, pipeline: Mapping[str, str] | None = None
) -> Any:
    """Replace << parameters.x >> (and << pipeline.x >> when given) in VALUE."""
    if isinstance(value, str):
        out = PARAM.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0),
                        value)
        if pipeline is not None:
            out = PIPELINE.sub(lambda m: pipeline.get(m.group(1), m.group(0)), out)
        if LEFTOVER.search(out):
            raise RehearsalError(f"{where}: unresolved parameter in {out!r}")
        return out
    if isinstance(value, list):
        return [substitute(v, params, where, pipeline) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, params, where, pipeline) for k, v in value.items()}
    return value


def logic(value: Any) -> bool:
    """CircleCI's logic statements (and, or, not, equal) over literal values."""
    if not isinstance(value, dict):
        return value not in (False, None, "", 0)
    if len(value) != 1:
        raise RehearsalError(f"logic statement {value!r} is not emulated")
    op, arg = next(iter(value.items()))
    if op == "not":
        return not logic(arg)
    if op == "and":
        return all(logic(v) for v in arg)
    if op == "or":
        return any(logic(v) for v in arg)
    if op == "equal":
        return all(v == arg[0] for v in arg)
    if op == "matches":
        spec = mapping(arg, "matches")
        only_keys(spec, ("pattern", "value"), "matches")
        return re.fullmatch(str(spec["pattern"]), str(spec["value"])) is not None
    raise RehearsalError(f"logic operator {op!r} is not emulated")


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]
