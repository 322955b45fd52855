"""The scheduled "lock and recompile" job, shared wording for every backend.

Upstream distributions republish images under the same release every few
weeks; this job runs `kvc lock`, recompiles, and proposes the change as one
pull request, so pins move only through review and a failed lookup never
blanks a working checksum (kvc lock keeps old pins on any failure).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kvc import __version__

BRANCH = "kvc/update-checksums"
TITLE = "kvc: update pinned upstream checksums"
# A venv, because runners' system Pythons refuse `pip install` (PEP 668).
VENV = '"$HOME/.kvc-venv"'
KVC = '"$HOME/.kvc-venv/bin/kvc"'
_COMMIT = re.compile(r"[0-9a-f]{40}\Z")
_SCP_LIKE = re.compile(r"(?P<user>[^@/:]+)@(?P<host>[^:/]+):(?P<path>[^/].*)\Z")


def install() -> str:
    """Install the kvc that wrote the pipeline, so its output stays byte-identical."""
    return (f"python3 -m venv {VENV} && {VENV}/bin/python -m pip install -q "
            f"--disable-pip-version-check {shlex.quote(requirement())}")


def is_release(version: str) -> bool:
    """X.Y.Z or X.Y.ZrcN: published from its tag (docs/releasing.md); .devN never is."""
    return re.fullmatch(r"\d+\.\d+\.\d+(rc\d+)?", version) is not None


def installable() -> bool:
    """Whether the update job's requirement can be installed in CI."""
    return is_release(__version__) or requirement() != f"kvc=={__version__}"


@functools.cache
def requirement() -> str:
    """The pip requirement of the running kvc: the header's version, or "that commit".

    A release (X.Y.Z) exists on the package index and is exactly its tagged
    commit, so it is installed by version whichever way this copy came.
    Between releases the version is X.Y.Z.devN and the commit is named
    instead, when it is known.

    pip records how a package was installed in ``direct_url.json`` (PEP 610;
    pip/_internal/models/direct_url.py: ``vcs_info.commit_id`` for git URLs,
    ``dir_info`` for local directories). A kvc installed from a git commit
    (`pip install 'kvc @ git+URL@SHA'`, the way to pin before a release) or
    by pre-commit (which clones the hook repository with `git init` +
    `git remote add origin` + `git checkout FETCH_HEAD` and runs
    `pip install .` there; pre-commit 4.7.0 pre_commit/store.py:185-199,
    pre_commit/git.py:185-193, pre_commit/languages/python.py:224) installs
    that same commit. Everything else (a release from the package index, an
    editable development checkout, a wheel) installs ``kvc==<version>``.
    """
    commit = None if is_release(__version__) else _installed_commit()
    if commit is None:
        return f"kvc=={__version__}"
    url, sha = commit
    return f"kvc @ git+{url}@{sha}"


def _installed_commit() -> tuple[str, str] | None:
    from importlib import metadata  # noqa: PLC0415 -- costly, and only update jobs need it

    try:
        text = metadata.distribution("kvc").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return from_direct_url(data) if isinstance(data, dict) else None


def from_direct_url(data: dict[str, object]) -> tuple[str, str] | None:
    """(repository URL, commit) from a PEP 610 record, when it names one."""
    url, vcs, local = data.get("url"), data.get("vcs_info"), data.get("dir_info")
    if not isinstance(url, str):
        return None
    if isinstance(vcs, dict) and vcs.get("vcs") == "git":
        sha = vcs.get("commit_id")
        return (_canonical(url), sha) if isinstance(sha, str) and _COMMIT.match(sha) else None
    if isinstance(local, dict) and not local.get("editable") and url.startswith("file://"):
        return _clean_checkout(Path(unquote(urlsplit(url).path)))
    return None


def _clean_checkout(directory: Path) -> tuple[str, str] | None:
    """A pre-commit clone: a clean git checkout whose origin is a remote URL."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                                  text=True, check=False, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha, origin = git("rev-parse", "HEAD"), git("config", "--get", "remote.origin.url")
    if sha is None or origin is None or not _COMMIT.match(sha) or git("status", "--porcelain"):
        return None
    remote = remote_url(origin)
    return (remote, sha) if remote else None


def remote_url(origin: str) -> str | None:
    """A URL pip can clone from CI, or None for local paths (a checkout on this disk)."""
    scp = _SCP_LIKE.match(origin)
    if scp and "://" not in origin:
        return _canonical(f"ssh://{scp['user']}@{scp['host']}/{scp['path']}")
    if urlsplit(origin).scheme in {"https", "http", "ssh", "git"}:
        return _canonical(origin)
    return None


def _canonical(url: str) -> str:
    """One spelling per repository, so a CLI and a pre-commit hook emit the same line."""
    url = url.rstrip("/")
    return url.removesuffix(".git")


def commands(spec_name: str, backend: str) -> list[str]:
    spec = shlex.quote(spec_name)
    return [install(), f"{KVC} lock {spec}", f"{KVC} compile {spec} --backend {backend}"]


def body(spec_name: str) -> str:
    return (f"`kvc lock {spec_name}` found new upstream checksums; the generated pipeline "
            "was recompiled. Review the diff of the pinned files before merging.")


def script(spec_name: str, backend: str) -> str:
    """The whole job as one shell script, for CI systems without a PR action."""
    title = shlex.quote(TITLE)
    text = shlex.quote(body(spec_name))
    return commit_then(spec_name, backend, f"""\
  # The checkout's deploy key is read-only: push over HTTPS with the job's token,
  # which a credential helper hands to git from the environment (never in argv or URL).
  url="$(git remote get-url origin)"
  case "$url" in
    git@*:*) host="${{url#git@}}"; url="https://${{host%%:*}}/${{url#*:}}" ;;
    ssh://git@*) url="https://${{url#ssh://git@}}" ;;
  esac
  git -c credential.helper= \\
    -c credential.helper='!f() {{ echo username=x-access-token; echo "password=$GH_TOKEN"; }}; f' \\
    push --force "$url" {BRANCH}
  gh pr create --head {BRANCH} --title {title} --body {text} || gh pr edit {BRANCH} --body {text}
""")


def commit_then(spec_name: str, backend: str, propose: str) -> str:
    """Lock, recompile, and when anything changed commit it on BRANCH and run ``propose``.

    ``propose`` is the CI's own way to push the branch and open the review
    (indented shell lines); the job fails when a lookup failed, after proposing
    the pins that did move.
    """
    install, lock, compile_ = commands(spec_name, backend)
    return f"""\
{install}
status=0
{lock} || status=$?
{compile_}
if [ -n "$(git status --porcelain)" ]; then
  git config user.name "kvc"
  git config user.email "kvc-update@localhost"
  git switch -C {BRANCH}
  git add -A
  git commit -m {shlex.quote(TITLE)}
{propose}fi
exit "$status"
"""
