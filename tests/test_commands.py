"""kvc init, graph and run --dry-run: everyday commands, through the CLI."""

from __future__ import annotations

import shlex
from pathlib import Path

from click.testing import CliRunner

from kvc.cli import main
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline

ROOT = Path(__file__).resolve().parent.parent
MULTI = ROOT / "examples/multi-distro/kvc.yaml"


def test_init_writes_a_spec_that_validates_and_compiles(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(tmp_path)]).exit_code == 0
    spec = tmp_path / "kvc.yaml"
    text = spec.read_text()
    assert text.startswith("# yaml-language-server: $schema=./kvc.schema.json")
    assert (tmp_path / "kvc.schema.json").is_file()
    assert runner.invoke(main, ["validate", str(spec)]).exit_code == 0
    builds = load(spec).builds
    assert {b.arch for b in builds} == {"amd64", "arm64"} and len({b.flavor for b in builds}) == 1
    for backend in ("github", "circleci"):
        result = runner.invoke(main, ["compile", str(spec), "--backend", backend])
        assert result.exit_code == 0, result.output


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["init", str(tmp_path)])
    spec = tmp_path / "kvc.yaml"
    spec.write_text("# mine\n")
    refused = runner.invoke(main, ["init", str(tmp_path)])
    assert refused.exit_code == 1 and "already exists" in refused.output
    assert spec.read_text() == "# mine\n"
    assert runner.invoke(main, ["init", str(tmp_path), "--force"]).exit_code == 0
    assert spec.read_text() != "# mine\n"


def test_graph_mermaid_has_every_job_edge_and_group() -> None:
    pipeline = build_pipeline(load(MULTI))
    out = CliRunner().invoke(main, ["graph", str(MULTI)]).output
    assert out.startswith("flowchart LR\n")
    for need, job in pipeline.edges():
        assert f"  {need.replace('-', '_')} --> {job.replace('-', '_')}\n" in out
    assert out.count("  subgraph ") == len(pipeline.images)
    for job in pipeline.jobs:
        assert f"{job.id.replace('-', '_')}[" in out and f"]:::{job.runner}" in out


def test_graph_dot_has_clusters_and_edges() -> None:
    pipeline = build_pipeline(load(MULTI))
    out = CliRunner().invoke(main, ["graph", str(MULTI), "--format", "dot"]).output
    assert out.startswith("digraph kvc {") and out.rstrip().endswith("}")
    assert out.count("subgraph \"cluster_") == len(pipeline.images)
    assert sum(1 for line in out.splitlines() if " -> " in line) == len(pipeline.edges())


def test_run_dry_run_prints_the_jobs_exact_environment() -> None:
    pipeline = build_pipeline(load(MULTI))
    job = next(j for j in pipeline.jobs if j.id == "build-ubuntu-24-04-arm64")
    out = CliRunner().invoke(main, ["run", str(MULTI), "ubuntu/24.04/arm64", "--stage", "build",
                                    "--dry-run"]).output
    command = out.splitlines()[1]
    words = shlex.split(command)
    assert words[0] == "env" and words[-2:] == ["bash", ".kvc/stages/build.sh"]
    assert dict(w.split("=", 1) for w in words[1:-2]) == job.env_dict()


def test_run_needs_an_arch_for_per_arch_stages() -> None:
    result = CliRunner().invoke(main, ["run", str(MULTI), "ubuntu/24.04", "--stage", "test",
                                       "--dry-run"])
    assert result.exit_code == 1
    assert "ubuntu/24.04/amd64" in result.output
    whole = CliRunner().invoke(main, ["run", str(MULTI), "ubuntu/24.04", "--stage", "publish",
                                      "--dry-run"])
    assert whole.exit_code == 0 and "publish.sh" in whole.output
