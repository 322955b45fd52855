"""Run an emitted GitLab CI configuration on local folders.

Emulated (GitLab docs in gitlabhq/gitlabhq@004274926a, doc/ci/yaml/index.md,
by section; the runner's shell in gitlabhq/gitlab-runner@018a2f645d):
- `workflow: rules` decide whether a pipeline is created, then each job's
  `rules`: the first rule whose `if` matches (or that has no `if`) decides,
  `when: never` drops the job, no match drops it ("rules", "rules:if",
  "workflow:rules"); `if` expressions with `$VAR`, "strings", `==`, `!=`,
  `&&`, `||` and parentheses (&& binds tighter: doc/ci/jobs/job_rules.md,
  "Join variable expressions together with && or ||");
- `needs`: a job starts when the jobs it needs succeeded (otherwise it is
  skipped), `needs: []` at once; a job without `needs` waits for every job of
  the earlier stages ("needs", "stages"). A need on a job that is not in the
  pipeline is an error when the pipeline is created ("needs", "Additional details");
- `needs: [{job, artifacts}]`: the artifacts of exactly the needed jobs whose
  entry has `artifacts: true` (the default) are extracted at their paths
  ("needs:artifacts"); a job without `needs` gets every earlier stage's artifacts;
- `artifacts: paths` (no globs), uploaded after `after_script` when the job
  succeeded, or also on failure with `when: always` ("artifacts:when");
- `cache: {key, paths}`: restored before the script, saved after it when the
  job succeeded, overwritten on every save ("cache:when", default on_success);
  one cache store per World (caches outlive pipelines);
- `before_script` + `script` in one bash with errexit and pipefail, stdin
  empty (gitlab-runner shells/bash.go, BashWriter.Finish); `after_script` in
  a new shell with the job's variables, whose failure does not change the
  job's status ("after_script"; "after_script ignores errors, build passes":
  gitlab-org/gitlab#21008);
- `variables` (plain, or `{value, expand: false}`; global ones under a job's
  own, doc/ci/yaml/#variables), expanded against the
  variables known so far with `$$` a literal `$`; precedence: project
  variables over trigger variables over job variables over predefined
  (doc/ci/variables/index.md, "CI/CD variable precedence"); a protected
  project variable reaches only pipelines of protected branches, an
  environment-scoped one only jobs with that `environment: name`;
- `trigger: {include: [{artifact, job}], strategy: depend}`: a child pipeline
  from the named job's artifact, with the trigger job's `variables`; the
  trigger job's status is the child pipeline's (doc/ci/pipelines/downstream_pipelines.md,
  "Dynamic child pipelines", "trigger:strategy"); inside the child
  CI_PIPELINE_SOURCE is `parent_pipeline` and no CI_MERGE_REQUEST_* variable is set;
- `id_tokens`: a (fake) JWT in the named variable;
- "Retry" of a downstream pipeline's failed jobs: each gets a new job id in the
  same pipeline (CI_PIPELINE_ID unchanged), the skipped jobs it blocked are
  processed again, the others keep their results and artifacts, and the
  parent's trigger job is reset to mirror the child's new status
  (gitlabhq/gitlabhq@01d2d6c8:app/services/ci/after_requeue_job_service.rb:12-28,
  process_subsequent_jobs and reset_source_bridge).
`image`, `services`, `tags`, `timeout`, `resource_group` only shape where a
job runs. Anything else raises RehearsalError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    descendants,
    in_waves,
    mapping,
    only_keys,
    topological,
)

GLOBAL_KEYS = ("workflow", "stages", "variables")
JOB_KEYS = (
    "stage", "image", "tags", "rules", "variables", "before_script", "script", "after_script",
    "artifacts", "needs", "trigger", "services", "timeout", "cache", "environment",
    "resource_group", "id_tokens",
)
RULE_KEYS = ("if", "when")
ARTIFACT_KEYS = ("paths", "expire_in", "when")
PROJECT_URL = "https://gitlab.com/example/images"
PARENT = "parent"
CHILD = "child"


@dataclass(frozen=True)
class Variable:
    """A project CI/CD variable (Settings → CI/CD → Variables)."""

    value: str
    protected: bool = False
    environment: str = "*"


class GitLabRun:
    """One parent pipeline and the child pipeline its trigger job creates."""

    def __init__(
        self,
        world: World,
        config: Path,
        *,
        source: str = "push",
        branch: str = "main",
        default_branch: str = "main",
        protected: tuple[str, ...] = ("main",),
        variables: Mapping[str, Variable] | None = None,
        replace: Mapping[str, str] | None = None,
        workers: int = os.cpu_count() or 2,
        pipeline: int = 1001,
    ) -> None:
        if source not in ("push", "merge_request_event"):
            raise RehearsalError(f"pipeline source {source!r} is not emulated")
        self.world, self.workers, self.config = world, workers, config
        self.source, self.branch, self.default_branch = source, branch, default_branch
        self.protected = branch in protected
        self.variables = dict(variables or {})
        self.replace = dict(replace or {})
        self.replaced: set[str] = set()
        self.pipeline_id = pipeline
        self.job_ids = iter(range(pipeline * 100, pipeline * 100 + 10**6))
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pipeline_of: dict[str, str] = {}
        self.stage_of: dict[str, int] = {}
        self.when: dict[str, str] = {}
        self.needs: dict[str, list[str]] = {}
        self.downloads: dict[str, list[str]] = {}
        self.trigger_vars: dict[str, str] = {}
        self.global_vars: dict[str, dict[str, str]] = {}
        self.child_jobs: list[str] = []
        self.artifacts: dict[str, Layer] = {}
        self.results: dict[str, JobResult] = {}
        self.history: list[JobResult] = []
        self.created = False

    # --- pipelines ----------------------------------------------------------

    def predefined(self, pipeline: str) -> dict[str, str]:
        """Predefined variables (doc/ci/variables/predefined_variables.md)."""
        out = {
            "CI": "true", "GITLAB_CI": "true",
            "CI_PIPELINE_ID": str(self.pipeline_id if pipeline == PARENT else self.pipeline_id + 1),
            "CI_PIPELINE_SOURCE": self.source if pipeline == PARENT else "parent_pipeline",
            "CI_COMMIT_SHA": "0" * 40, "CI_COMMIT_REF_NAME": self.branch,
            "CI_DEFAULT_BRANCH": self.default_branch,
            "CI_PROJECT_URL": PROJECT_URL, "CI_PROJECT_PATH": "example/images",
            # The project's CI/CD configuration file (the file this run started from).
            "CI_CONFIG_PATH": self.config.name,
            "CI_SERVER_URL": "https://gitlab.com",
            "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "glcbt-rehearsal",
        }
        if self.source == "merge_request_event":
            # "Not available in merge request pipelines": CI_COMMIT_BRANCH. A child
            # pipeline gets no merge request variables, so keep its branch: only
            # KVC_PARENT_SOURCE may stop a merge request's child from publishing.
            if pipeline == PARENT:
                out["CI_MERGE_REQUEST_IID"] = "7"
            else:
                out["CI_COMMIT_BRANCH"] = self.branch
        else:
            out["CI_COMMIT_BRANCH"] = self.branch
        return out

    def load(self, path: Path | None, content: bytes | None = None) -> dict[str, Any]:
        doc = YAML(typ="safe").load(content if content is not None else path)  # type: ignore[arg-type]
        return mapping(doc, str(path))

    def run(self) -> dict[str, str]:
        if self.created:
            raise RehearsalError("run() creates the pipeline once; retry_failed() for more")
        self.created = True
        doc = self.load(self.config)
        base = self.predefined(PARENT)
        workflow = mapping(doc.get("workflow"), "workflow")
        only_keys(workflow, ("rules",), "workflow")
        if "rules" in workflow and rules_decide(workflow["rules"], base, "workflow") == "never":
            return {}  # no pipeline is created
        self.create(doc, PARENT, base)
        self.waves([j for j in self.needs if self.pipeline_of[j] == PARENT])
        return self.statuses()

    def statuses(self) -> dict[str, str]:
        return {j: r.status for j, r in self.results.items()}

    def create(self, doc: dict[str, Any], pipeline: str, base: Mapping[str, str]) -> list[str]:
        """Add DOC's jobs that its rules keep; check their needs."""
        stages = [str(s) for s in doc.get("stages", ["build", "test", "deploy"])]
        env = {**base, **self.trigger_vars} if pipeline == CHILD else dict(base)
        # Global variables reach every job of the file; a job's own override them.
        self.global_vars[pipeline] = job_variables({"variables": doc.get("variables")}, env,
                                                   f"{pipeline}.variables")
        names = [name for name, spec in doc.items() if name not in GLOBAL_KEYS
                 and self._select(name, spec, pipeline, stages, env)]
        if not names:
            raise RehearsalError(f"{pipeline} pipeline has no jobs: GitLab creates none")
        for name in names:
            self._link(name, names, pipeline)
        topological({n: self.needs[n] for n in names})
        return names

    def _select(self, name: str, spec: Any, pipeline: str, stages: list[str],
                env: Mapping[str, str]) -> bool:
        """Check job NAME and keep it when its rules do."""
        if name in ("default", "include", "image", "services", "cache",
                    "before_script", "after_script") or name.startswith("."):
            raise RehearsalError(f"{pipeline} pipeline: global {name!r} is not emulated")
        job = mapping(spec, name)
        only_keys(job, JOB_KEYS, f"{pipeline} job {name}")
        if name in self.jobs:
            raise RehearsalError(f"job {name} is defined twice")
        stage = str(job.get("stage", "test"))
        if stage not in stages:
            raise RehearsalError(f"{name}: stage {stage!r} is not in stages {stages}")
        when = rules_decide(job["rules"], env, name) if "rules" in job else "on_success"
        if when == "never":
            return False
        if when not in ("on_success", "always"):
            raise RehearsalError(f"{name}: when {when!r} is not emulated")
        self.when[name] = when
        self.jobs[name], self.pipeline_of[name] = job, pipeline
        self.stage_of[name] = stages.index(stage)
        return True

    def _link(self, name: str, names: list[str], pipeline: str) -> None:
        """NAME's needs and the jobs whose artifacts it downloads."""
        job = self.jobs[name]
        if "needs" not in job:
            earlier = [n for n in names if self.stage_of[n] < self.stage_of[name]]
            self.needs[name], self.downloads[name] = earlier, list(earlier)
            return
        entries = [need_entry(e, name) for e in job["needs"]]
        self.needs[name] = [e[0] for e in entries]
        self.downloads[name] = [j for j, artifacts in entries if artifacts]
        for need in self.needs[name]:
            if need not in names:
                raise RehearsalError(
                    f"{pipeline} pipeline not created: '{name}' job needs '{need}' job, "
                    f"but '{need}' is not in any previous stage")
            if self.stage_of[need] > self.stage_of[name]:
                raise RehearsalError(f"{name} needs {need} of a later stage")

    def waves(self, jobs: list[str], pipeline: list[str] | None = None) -> None:
        """Run JOBS of PIPELINE (default: JOBS are the whole pipeline) in needs order."""
        order = topological({j: self.needs[j] for j in pipeline or jobs})

        def one(job: str) -> JobResult:
            self.results[job] = self._job(job)
            return self.results[job]

        self.history.extend(in_waves(order, self.needs, set(jobs), one, self.workers))

    def retry_failed(self) -> dict[str, str]:
        """The downstream pipeline's Retry: its failed jobs, then the jobs they blocked."""
        failed = {j for j in self.child_jobs if self.results[j].status == "failure"}
        if not failed:
            raise RehearsalError("nothing failed in the child pipeline: nothing to retry")
        child = {j: self.needs[j] for j in self.child_jobs}
        again = descendants(child, failed)
        self.waves(sorted(again, key=self.child_jobs.index), self.child_jobs)
        for job, spec in self.jobs.items():
            if "trigger" in spec and self.results[job].status != "skipped":
                self.results[job].status = self.child_status()
        return self.statuses()

    def child_status(self) -> str:
        statuses = {self.results[j].status for j in self.child_jobs}
        return "failure" if "failure" in statuses else "success"

    def substitute(self, command: str) -> str:
        """Apply the test's replacements (text the rehearsal cannot run as emitted)."""
        for old, new in self.replace.items():
            if old in command:
                self.replaced.add(old)
                command = command.replace(old, new)
        return command

    # --- jobs ---------------------------------------------------------------

    def _job(self, job: str) -> JobResult:
        spec = self.jobs[job]
        machine = Machine(self.world, job, f"{self.pipeline_of[job]}-job-{next(self.job_ids)}")
        blocked = any(self.results.get(d) is None or self.results[d].status != "success"
                      for d in self.needs[job])
        if blocked and self.when[job] != "always":
            machine.result.status = "skipped"
            return machine.result
        if "trigger" in spec:
            self.trigger(job, spec, machine)
            return machine.result
        JobScript(self, job, spec, machine).run()
        return machine.finish()

    def trigger(self, job: str, spec: dict[str, Any], machine: Machine) -> None:
        only_keys(spec, ("stage", "rules", "needs", "variables", "trigger"), f"trigger job {job}")
        trig = mapping(spec["trigger"], f"{job}.trigger")
        only_keys(trig, ("include", "strategy"), f"{job}.trigger")
        if trig.get("strategy") != "depend":
            raise RehearsalError(f"{job}: only trigger:strategy depend is emulated")
        (include,) = trig["include"]
        include = mapping(include, f"{job}.trigger.include")
        only_keys(include, ("artifact", "job"), f"{job}.trigger.include")
        producer, path = str(include["job"]), str(include["artifact"]).lstrip("./")
        layer = self.artifacts.get(producer)
        if layer is None or path not in layer.files:
            machine.note(f"{job}: {producer} has no artifact {path}")
            machine.result.status = "failure"
            return
        base = self.predefined(PARENT)
        self.trigger_vars = job_variables(spec, base, job)
        child = self.load(Path(f"{producer}:{path}"), layer.files[path])
        self.child_jobs = self.create(child, CHILD, self.predefined(CHILD))
        self.waves(self.child_jobs)
        machine.result.status = self.child_status()

    def env_for(self, job: str, spec: dict[str, Any], machine: Machine) -> dict[str, str]:
        pipeline = self.pipeline_of[job]
        env = {**machine.env(), **self.predefined(pipeline),
               "CI_JOB_NAME": job, "CI_JOB_ID": machine.result.run.rsplit("-", 1)[1],
               "CI_PROJECT_DIR": str(machine.work)}
        env.update(self.global_vars.get(pipeline, {}))
        env.update(job_variables(spec, env, job))
        if pipeline == CHILD:
            env.update(self.trigger_vars)
        environment = mapping(spec.get("environment"), f"{job}.environment")
        only_keys(environment, ("name", "action"), f"{job}.environment")
        if environment.get("action", "start") not in ("start", "prepare"):
            raise RehearsalError(f"{job}: environment action {environment['action']!r}")
        for name, var in self.variables.items():
            if var.protected and not self.protected:
                continue
            if var.environment not in ("*", environment.get("name")):
                continue
            env[name] = var.value
        for name, token in mapping(spec.get("id_tokens"), f"{job}.id_tokens").items():
            only_keys(mapping(token, name), ("aud",), f"{job}.id_tokens.{name}")
            env[name] = f"eyJhbGciOiJSUzI1NiJ9.rehearsal-{job}.sig"
        return env


class JobScript:
    """One job on one machine: needs' artifacts, cache, scripts, artifacts."""

    def __init__(self, run: GitLabRun, job: str, spec: dict[str, Any], machine: Machine) -> None:
        self.run_, self.job, self.spec, self.m = run, job, spec, machine

    def run(self) -> None:
        spec, m = self.spec, self.m
        for service in spec.get("services", []):
            only_keys(mapping(service, "services"), ("name", "alias"), f"{self.job}.services")
        m.checkout()
        for producer in self.run_.downloads[self.job]:
            layer = self.run_.artifacts.get(producer)
            if layer is not None:
                m.receive(".", layer)
        env = self.run_.env_for(self.job, spec, m)
        cache = mapping(spec.get("cache"), f"{self.job}.cache")
        only_keys(cache, ("key", "paths"), f"{self.job}.cache")
        hit = self.run_.world.caches.get(str(cache["key"])) if cache else None
        if hit is not None:
            m.receive(".", hit)
        script = [*lines(spec.get("before_script"), self.job), *lines(spec["script"], self.job)]
        ok = self.shell(script, env, "script") == 0
        after = lines(spec.get("after_script"), self.job)
        if after and self.shell(after, env, "after_script") != 0:
            m.note("after_script failed; the job's status does not change")
        if not ok:
            m.result.status = "failure"
        if cache and ok:
            self.save_cache(str(cache["key"]), [str(p) for p in cache["paths"]])
        self.upload(ok)

    def save_cache(self, key: str, paths: list[str]) -> None:
        files = {f"{p.rstrip('/')}/{k}": v for p in paths
                 for k, v in self.m.collect(p.rstrip("/")).items()}
        self.run_.world.caches[key] = Layer(files, Origin(self.job, self.m.result.run))

    def shell(self, commands: list[str], env: dict[str, str], what: str) -> int:
        body = "\n".join(self.run_.substitute(c) for c in commands)
        path = self.m.tmp / f"{what}.sh"
        # What BashWriter.Finish puts before the commands.
        path.write_text("set -o pipefail\nset -o errexit\nset +o noclobber\n" + body + "\n")
        return self.m.shell(["bash", str(path)], env)

    def upload(self, ok: bool) -> None:
        spec = mapping(self.spec.get("artifacts"), f"{self.job}.artifacts")
        if not spec:
            return
        only_keys(spec, ARTIFACT_KEYS, f"{self.job}.artifacts")
        when = spec.get("when", "on_success")
        if when not in ("on_success", "always", "on_failure"):
            raise RehearsalError(f"{self.job}: artifacts:when {when!r}")
        if (when == "on_success" and not ok) or (when == "on_failure" and ok):
            return
        files: dict[str, bytes] = {}
        for raw in spec["paths"]:
            path = str(raw).rstrip("/")
            if any(c in path for c in "*?[") or path.startswith(("/", "..")):
                raise RehearsalError(f"{self.job}: artifact path {raw!r} is not emulated")
            top = self.m.work / path
            found = self.m.collect(path)
            if top.is_file():
                files[path] = found[top.name]
            else:
                files.update({f"{path}/{k}": v for k, v in found.items()})
            if not found:
                self.m.note(f"WARNING: {path}: no matching files")
        self.run_.artifacts[self.job] = Layer(files, Origin(self.job, self.m.result.run))


def lines(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RehearsalError(f"{where}: a script must be a string or a list of strings")


def need_entry(entry: Any, where: str) -> tuple[str, bool]:
    if isinstance(entry, str):
        return entry, True
    spec = mapping(entry, f"{where}.needs")
    only_keys(spec, ("job", "artifacts"), f"{where}.needs")
    artifacts = spec.get("artifacts", True)
    if not isinstance(artifacts, bool):
        raise RehearsalError(f"{where}: needs:artifacts must be a boolean")
    return str(spec["job"]), artifacts


VAR = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


def expand(value: str, known: Mapping[str, str]) -> str:
    """$VAR and ${VAR} from KNOWN (an unknown one is empty); $$ is a literal $."""
    return VAR.sub(lambda m: "$" if m.group(0) == "$$" else known.get(m.group(1) or m.group(2), ""),
                   value)


def job_variables(spec: dict[str, Any], known: Mapping[str, str], job: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in mapping(spec.get("variables"), f"{job}.variables").items():
        if isinstance(raw, dict):
            only_keys(raw, ("value", "expand"), f"{job}.variables.{name}")
            if raw.get("expand", True) is not False:
                raise RehearsalError(f"{job}.variables.{name}: only expand: false is emulated")
            out[name] = text(raw["value"])
        else:
            out[name] = expand(text(raw), {**known, **out})
    return out


# --- rules ------------------------------------------------------------------

TOKEN = re.compile(r'\s*(?:(\$\{?\w+\}?)|("[^"]*"|\'[^\']*\')|(==|!=|&&|\|\||\(|\))|(null)\b)')


def rules_decide(rules: Any, env: Mapping[str, str], where: str) -> str:
    """The `when` of the first matching rule; "never" when none matches."""
    if not isinstance(rules, list):
        raise RehearsalError(f"{where}: rules must be a list")
    for i, raw in enumerate(rules):
        rule = mapping(raw, f"{where}.rules[{i}]")
        only_keys(rule, RULE_KEYS, f"{where}.rules[{i}]")
        if "if" not in rule or condition(str(rule["if"]), env):
            return str(rule.get("when", "on_success"))
    return "never"


def condition(expr: str, env: Mapping[str, str]) -> bool:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr.rstrip()):
        m = TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise RehearsalError(f"rules:if {expr!r}: cannot parse {expr[pos:]!r}")
        kind = ("var", "str", "op", "null")[[g is not None for g in m.groups()].index(True)]
        tokens.append((kind, m.group(m.lastindex or 0)))
        pos = m.end()
    parser = _Parser(tokens, env, expr)
    value = parser.disjunction()
    if parser.pos != len(tokens):
        raise RehearsalError(f"rules:if {expr!r}: unexpected {tokens[parser.pos][1]!r}")
    return truthy(value)


def truthy(value: str | bool | None) -> bool:
    return bool(value)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], env: Mapping[str, str], expr: str) -> None:
        self.tokens, self.env, self.expr, self.pos = tokens, env, expr, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def disjunction(self) -> str | bool | None:
        value = self.conjunction()
        while self.peek() == "||":
            self.pos += 1
            right = self.conjunction()
            value = truthy(value) or truthy(right)
        return value

    def conjunction(self) -> str | bool | None:
        value = self.comparison()
        while self.peek() == "&&":
            self.pos += 1
            right = self.comparison()
            value = truthy(value) and truthy(right)
        return value

    def comparison(self) -> str | bool | None:
        left = self.primary()
        op = self.peek()
        if op in ("==", "!="):
            self.pos += 1
            right = self.primary()
            return (left == right) == (op == "==")
        return left

    def primary(self) -> str | bool | None:
        if self.pos >= len(self.tokens):
            raise RehearsalError(f"rules:if {self.expr!r}: ends too early")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if value == "(":
            inner = self.disjunction()
            if self.peek() != ")":
                raise RehearsalError(f"rules:if {self.expr!r}: missing )")
            self.pos += 1
            return inner
        if kind == "var":
            return self.env.get(value.strip("${}"))
        if kind == "str":
            return value[1:-1]
        if kind == "null":
            return None
        raise RehearsalError(f"rules:if {self.expr!r}: unexpected {value!r}")
