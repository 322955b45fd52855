"""The ``kvc`` command line: thin click wrappers around one module per command."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import click

from kvc import __version__
from kvc.commands import compile as compile_command
from kvc.commands import explain as explain_command
from kvc.commands import graph as graph_command
from kvc.commands import init as init_command
from kvc.commands import lock as lock_command
from kvc.commands import plan as plan_command
from kvc.commands import run as run_command
from kvc.commands import schema as schema_command
from kvc.commands import validate as validate_command
from kvc.errors import EXIT_INTERNAL, EXIT_USER, FatalError
from kvc.spec.diagnostics import SpecError, render

SPEC = click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))


def _sources(error: SpecError) -> dict[str, str]:
    sources: dict[str, str] = {}
    for diag in error.diagnostics:
        try:
            sources[diag.pos.file] = Path(diag.pos.file).read_text(encoding="utf-8",
                                                                    errors="replace")
        except OSError:
            continue
    return sources


def _run(action: Callable[[], int]) -> None:
    """Turn every failure into a message and an exit code; never a traceback."""
    ctx = click.get_current_context()
    try:
        code = action()
    except SpecError as error:
        click.echo(render(error.diagnostics, _sources(error)), nl=False, err=True)
        code = EXIT_USER
    except FatalError as error:
        click.echo(f"kvc: error: {error}", err=True)
        code = EXIT_USER
    except OSError as error:  # unwritable output directory, full disk, ...
        where = f" {error.filename}" if error.filename else ""
        click.echo(f"kvc: error: cannot access{where}: {error.strerror or error}", err=True)
        code = EXIT_USER
    except (click.exceptions.Exit, click.ClickException):
        raise
    except Exception as error:  # the last line of defence: report, don't crash
        if ctx.find_root().params.get("traceback"):
            traceback.print_exc()
        click.echo(f"kvc: internal error: {type(error).__name__}: {error}\n"
                   "kvc: this is a bug in kvc; rerun with --traceback and report it", err=True)
        code = EXIT_INTERNAL
    ctx.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvc")
@click.option("--traceback", is_flag=True, help="Show Python tracebacks of internal errors.")
def main(traceback: bool) -> None:
    """Compile one spec of KubeVirt machine images into CI pipelines."""


@main.command()
@SPEC
def validate(spec: Path) -> None:
    """Check SPEC and report every problem as FILE:LINE:COL."""
    _run(lambda: validate_command.run(spec))


@main.command()
@SPEC
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--changed", is_flag=True,
              help="Ask the registry which images would run now, and why (the CI's plan stage).")
@click.option("--force", default="", metavar="IMAGES",
              help="With --changed: 'all' or comma-separated images (flavor/release or slug).")
def plan(spec: Path, as_json: bool, changed: bool, force: str) -> None:
    """Show every image build: runner, source, checksum, sysprep, tags."""
    if changed:
        _run(lambda: plan_command.run_changed(spec, as_json, force))
    else:
        _run(lambda: plan_command.run(spec, as_json))


@main.command()
@SPEC
@click.argument("image")
def explain(spec: Path, image: str) -> None:
    """Show every resolved value of IMAGE (flavor/release[/arch]) and its origin."""
    _run(lambda: explain_command.run(spec, image))


@main.command(name="compile")
@SPEC
@click.option("-b", "--backend", required=True, metavar="NAME",
              help="Target CI system: circleci or github.")
@click.option("-o", "--out", type=click.Path(path_type=Path, file_okay=False),
              help="Repository root to write into (default: the spec's directory).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if any generated file is missing, stale or left over.")
@click.option("--fail-if-changed", is_flag=True,
              help="Exit 1 when any file was written or removed (for pre-commit hooks).")
@click.option("--schema", "with_schema", is_flag=True,
              help="Also write kvc.schema.json beside the spec (for editors).")
def compile_(spec: Path, backend: str, *, out: Path | None, check: bool,
             fail_if_changed: bool, with_schema: bool) -> None:
    """Write the CI configuration and build files for SPEC."""
    _run(lambda: compile_command.run(spec, backend, out=out, check=check,
                                     fail_if_changed=fail_if_changed, with_schema=with_schema))


@main.command()
@SPEC
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
def lock(spec: Path, dry_run: bool) -> None:
    """Pin upstream checksums in SPEC from each release's checksum_url."""
    _run(lambda: lock_command.run(spec, dry_run))


@main.command(name="run")
@SPEC
@click.argument("image")
@click.option("--stage", required=True,
              type=click.Choice(["build", "containerize", "test", "publish"]),
              help="Which job of IMAGE (flavor/release[/arch]) to run.")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False),
              help="Repository root to run in (default: the spec's directory).")
@click.option("--dry-run", is_flag=True, help="Print the script and environment; run nothing.")
def run_(spec: Path, image: str, stage: str, workdir: Path | None, dry_run: bool) -> None:
    """Run one job locally with the script and environment CI would use."""
    _run(lambda: run_command.run(spec, image, stage, workdir, dry_run))


@main.command()
@SPEC
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid renders in GitHub Markdown; dot is Graphviz.")
def graph(spec: Path, fmt: str) -> None:
    """Draw the job graph: images as groups, colours by runner arch."""
    _run(lambda: graph_command.run(spec, fmt))


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing kvc.yaml.")
def init(directory: Path, force: bool) -> None:
    """Write a commented starter kvc.yaml (and its JSON Schema) into DIRECTORY."""
    _run(lambda: init_command.run(directory, force))


@main.command()
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
def schema(out: Path | None) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server)."""
    _run(lambda: schema_command.run(out))


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
