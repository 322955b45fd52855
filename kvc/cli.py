"""The ``kvc`` command line: thin click wrappers around one module per command.

Each command imports its module when it runs, not at start-up: a command pays
only for what it uses (``kvc validate`` never loads the emitters, ``kvc
compile`` never loads the lock fetcher), which is most of a small compile's
time (benchmarks/compile.py compares whole runs with the import floor).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import click

# kvc has no pydantic plugins; without this pydantic scans every installed
# package's entry points when the first model is built (tens of milliseconds).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from kvc import __version__
from kvc.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USER, FatalError
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
        sys.stdout.flush()  # surface a closed pipe here, not at interpreter exit
    except BrokenPipeError:
        code = _quiet_broken_pipe()
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


def _quiet_broken_pipe() -> int:
    """`kvc explain ... | head -1`: the reader is gone, which is not an error.

    stdout is pointed at /dev/null so Python's final flush cannot complain.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor: nothing to flush
        pass
    return EXIT_OK


def _backend_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An unknown backend is a usage error (exit 2), with a suggestion."""
    from kvc.backends import BACKENDS
    from kvc.commands.common import suggest
    if value not in BACKENDS:
        raise click.BadParameter(str(suggest(value, BACKENDS, "backend")).removeprefix(
            "unknown backend "), ctx, param)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvc")
@click.option("--traceback", is_flag=True, help="Show Python tracebacks of internal errors.")
def main(traceback: bool) -> None:
    """Compile one spec of KubeVirt machine images into CI pipelines."""


@main.command()
@SPEC
def validate(spec: Path) -> None:
    """Check SPEC and report every problem as FILE:LINE:COL."""
    from kvc.commands import validate as validate_command
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
    from kvc.commands import plan as plan_command
    if changed:
        _run(lambda: plan_command.run_changed(spec, as_json, force))
    else:
        _run(lambda: plan_command.run(spec, as_json))


@main.command()
@SPEC
@click.argument("image", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per build (all builds when IMAGE is omitted).")
def explain(spec: Path, image: str | None, as_json: bool) -> None:
    """Show every resolved value of IMAGE (flavor/release[/arch]) and its origin."""
    from kvc.commands import explain as explain_command
    _run(lambda: explain_command.run(spec, image, as_json))


@main.command(name="compile")
@SPEC
@click.option("-b", "--backend", required=True, metavar="NAME", callback=_backend_name,
              help="Target CI system: circleci, github or gitlab.")
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
    from kvc.commands import compile as compile_command
    _run(lambda: compile_command.run(spec, backend, out=out, check=check,
                                     fail_if_changed=fail_if_changed, with_schema=with_schema))


@main.command()
@SPEC
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--from", "from_files", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Pin from this checksum file (downloaded by hand) instead of the network; "
                   "repeatable.")
def lock(spec: Path, dry_run: bool, from_files: tuple[Path, ...]) -> None:
    """Pin upstream checksums in SPEC from each release's checksum_url."""
    from kvc.commands import lock as lock_command
    _run(lambda: lock_command.run(spec, dry_run, from_files=from_files))


@main.command(name="run")
@SPEC
@click.argument("image")
@click.option("--stage", required=True,
              type=click.Choice(["build", "containerize", "test", "publish"]),
              help="Which job of IMAGE (flavor/release[/arch]) to run.")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False),
              help="Repository root to run in (default: the tree compiled from the spec, "
                   "else the spec's directory).")
@click.option("--dry-run", is_flag=True, help="Print the script and environment; run nothing.")
def run_(spec: Path, image: str, stage: str, workdir: Path | None, dry_run: bool) -> None:
    """Run one job locally with the script and environment CI would use."""
    from kvc.commands import run as run_command
    _run(lambda: run_command.run(spec, image, stage, workdir, dry_run))


@main.command()
@SPEC
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid renders in GitHub Markdown; dot is Graphviz.")
def graph(spec: Path, fmt: str) -> None:
    """Draw the job graph: images as groups, colours by runner arch."""
    from kvc.commands import graph as graph_command
    _run(lambda: graph_command.run(spec, fmt))


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing kvc.yaml.")
def init(directory: Path, force: bool) -> None:
    """Write a commented starter kvc.yaml (and its JSON Schema) into DIRECTORY."""
    from kvc.commands import init as init_command
    _run(lambda: init_command.run(directory, force))


@main.command(name="import")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the spec to this file (atomically) instead of standard output.")
@click.option("--registry", help="Registry to publish to (default: from bake.hcl's tag "
              "function).")
def import_(directory: Path, out: Path | None, registry: str | None) -> None:
    """Write one spec reproducing a hand-written pipeline in DIRECTORY (images/*/env.sh,
    virt.sysprep, bake.hcl, .circleci/config.yml). Nothing in it is ever executed."""
    from kvc.importer import command as import_command
    _run(lambda: import_command.run(directory, out, registry))


@main.command()
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
def schema(out: Path | None) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server)."""
    from kvc.commands import schema as schema_command
    _run(lambda: schema_command.run(out))


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
