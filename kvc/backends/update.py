"""The scheduled "lock and recompile" job, shared wording for every backend.

Upstream distributions republish images under the same release every few
weeks; this job runs `kvc lock`, recompiles, and proposes the change as one
pull request, so pins move only through review and a failed lookup never
blanks a working checksum (kvc lock keeps old pins on any failure).
"""

from __future__ import annotations

import shlex

from kvc import __version__

BRANCH = "kvc/update-checksums"
TITLE = "kvc: update pinned upstream checksums"
# The kvc that wrote the pipeline regenerates it, so the output stays byte-identical.
# A venv, because runners' system Pythons refuse `pip install` (PEP 668).
VENV = '"$HOME/.kvc-venv"'
INSTALL = (f"python3 -m venv {VENV} && {VENV}/bin/python -m pip install -q "
           f"--disable-pip-version-check 'kvc=={__version__}'")
KVC = '"$HOME/.kvc-venv/bin/kvc"'


def commands(spec_name: str, backend: str) -> list[str]:
    spec = shlex.quote(spec_name)
    return [INSTALL, f"{KVC} lock {spec}", f"{KVC} compile {spec} --backend {backend}"]


def body(spec_name: str) -> str:
    return (f"`kvc lock {spec_name}` found new upstream checksums; the generated pipeline "
            "was recompiled. Review the diff of the pinned files before merging.")


def script(spec_name: str, backend: str) -> str:
    """The whole job as one shell script, for CI systems without a PR action."""
    install, lock, compile_ = commands(spec_name, backend)
    title = shlex.quote(TITLE)
    text = shlex.quote(body(spec_name))
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
  git commit -m {title}
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
fi
exit "$status"
"""
