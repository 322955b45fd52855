"""A recording stand-in for external tools (curl, virt-customize, docker...).

Installed on PATH under each tool's name as a wrapper running
`python -S stub.py TOOL ARGS...` (conftest.RECORD). Each call
appends one JSON line to $KVC_STUB_LOG: the tool name, its argv exactly as
received, its environment and working directory. A few tools get just enough
behaviour for the stage scripts to proceed (curl writes its --output file,
qemu-img convert copies its input...). Per-tool knobs, from the environment:

- KVC_STUB_FAIL_<tool>=N: the first N calls of <tool> fail with exit 1
  (-1: every call fails).
- KVC_STUB_CURL_SRC: the file curl "downloads".
- KVC_STUB_SLEEP_<tool>=S: sleep S seconds first (a hanging tool).
- KVC_STUB_STDOUT_<tool>: printed on stdout by every successful call.
- guestfish records its standard input (the script) as "stdin" in its log
  entry and, without KVC_STUB_STDOUT_guestfish, answers "false" (the
  `exists /.autorelabel` check build.sh makes after a relabel).

kubectl and virtctl also record the content of every local file they are
given (``-f FILE``, ``--from-file=[KEY=]FILE``, ``--identity-file=FILE``, and
standard input for ``-f -``) in $KVC_STUB_LOG.files.jsonl, so a test sees
what the cluster would have received even after the stage deletes its
scratch files.
"""

from __future__ import annotations

import os
import sys
import time

# Every stubbed tool call starts this script, and a stage run makes dozens of
# them: it is run with `python -S` and imports only built-in modules up front
# (json alone, through re and enum, cost more than the interpreter), so a
# call takes about a third of what it did. The log is JSON lines all the same.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(text: str) -> str:
    """``text`` as a JSON string; control characters and lone surrogates (undecodable
    bytes of the environment) as \\u escapes, as json.dumps writes them."""
    return '"' + "".join(
        _ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " or "\ud800" <= c <= "\udfff" else c)
        for c in text) + '"'


def to_json(value: object) -> str:
    """The log's values: strings, lists of strings and string-keyed dicts of them."""
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_string(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def tool_key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def record(name: str, argv: list[str]) -> int:
    """Append the call to the log; returns how many calls of ``name`` came before
    (kept in a counter file next to the log, not by reading the whole log back)."""
    log = os.environ["KVC_STUB_LOG"]
    counter = f"{log}.count-{tool_key(name)}"
    try:
        with open(counter, encoding="utf-8") as f:
            previous = int(f.read())
    except FileNotFoundError:
        previous = 0
    with open(counter, "w", encoding="utf-8") as f:
        f.write(str(previous + 1))
    entry: dict[str, object] = {"tool": name, "argv": argv, "env": dict(os.environ),
                                "cwd": os.getcwd()}
    if name == "guestfish":
        entry["stdin"] = sys.stdin.read()
    with open(log, "a", encoding="utf-8") as f:
        f.write(to_json(entry) + "\n")
    return previous


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def copy(source: str, target: str) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())


def curl(argv: list[str]) -> int:
    copy(os.environ["KVC_STUB_CURL_SRC"], option(argv, "--output"))
    return 0


def qemu_img(argv: list[str]) -> int:
    if argv[0] == "convert":
        copy(argv[-2], argv[-1])
    elif argv[0] == "create":
        positional = [a for a in argv[1:] if not a.startswith("-") and a != "qcow2"]
        open(positional[0], "wb").close()
    elif argv[0] == "info":
        print('{\n    "virtual-size": 12884901888,\n    "format": "qcow2"\n}')
    return 0


def guestfish(argv: list[str]) -> int:
    if "KVC_STUB_STDOUT_guestfish" not in os.environ:
        print("false")
    return 0


def virt_resize(argv: list[str]) -> int:
    copy(argv[-2], argv[-1])
    return 0


def docker(argv: list[str]) -> int:
    if argv[:2] == ["buildx", "bake"]:
        return docker_bake(argv)
    if argv[0] == "run":
        return docker_run(argv)
    if argv[0] == "login":
        with open(os.environ["KVC_STUB_LOG"] + ".login-stdin", "w", encoding="utf-8") as f:
            f.write(sys.stdin.read())
    if argv[:3] == ["buildx", "inspect", "kvc"]:
        return int(os.environ.get("KVC_STUB_NO_BUILDER", "0"))
    return 0


def docker_bake(argv: list[str]) -> int:
    digest = os.environ.get("KVC_STUB_DIGEST", "sha256:" + "ab" * 32)
    meta = (f'{{\n  {to_json(argv[-1])}: {{\n    "containerimage.digest": {to_json(digest)},\n'
            '    "image.name": "ignored"\n  }\n}')
    with open(option(argv, "--metadata-file"), "w", encoding="utf-8") as f:
        f.write(meta)
    for i, arg in enumerate(argv[:-1]):
        value = argv[i + 1]
        if arg == "--set" and ".output=type=oci,dest=" in value:
            with open(value.split("dest=", 1)[1], "wb") as f:
                f.write(b"oci-archive")
    return 0


def docker_run(argv: list[str]) -> int:
    """Run the container's command on the host with only the -e NAME vars."""
    args = argv[1:]
    env = {"PATH": os.environ["PATH"], "KVC_STUB_LOG": os.environ["KVC_STUB_LOG"]}
    env.update({k: v for k, v in os.environ.items() if k.startswith("KVC_STUB_")})
    workdir = os.getcwd()
    i = 0
    while i < len(args) and args[i].startswith("-"):
        flag = args[i]
        if flag == "--rm":
            i += 1
            continue
        value = args[i + 1]
        if flag == "-e":
            name, eq, constant = value.partition("=")
            if eq and name.startswith("KVC_"):
                return 99  # spec values must be passed by name only
            if eq:
                env[name] = constant
            elif value in os.environ:
                env[value] = os.environ[value]
        elif flag == "-w":
            workdir = value
        i += 2
    command = args[i + 1 :]
    import subprocess  # noqa: PLC0415 - only this tool needs it (see the imports)

    return subprocess.run(command, env=env, cwd=workdir, check=False).returncode


def given_files(argv: list[str]) -> list[str]:
    paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-f", "--filename")]
    for arg in argv:
        for flag in ("--from-file=", "--identity-file=", "--filename="):
            if arg.startswith(flag):
                paths.append(arg.removeprefix(flag).rpartition("=")[2])
    return paths


def capture_files(name: str, argv: list[str]) -> int:
    with open(os.environ["KVC_STUB_LOG"] + ".files.jsonl", "a", encoding="utf-8") as out:
        for path in given_files(argv):
            content = sys.stdin.read() if path == "-" else None
            if content is None and os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    content = f.read()
            if content is not None:
                out.write(to_json({"tool": name, "argv": argv, "path": path,
                                   "content": content}) + "\n")
    return 0


BEHAVIOUR = {"kubectl": lambda argv: capture_files("kubectl", argv),
             "virtctl": lambda argv: capture_files("virtctl", argv),
             "curl": curl, "qemu-img": qemu_img, "virt-resize": virt_resize, "docker": docker,
             "guestfish": guestfish}


def main() -> int:
    name = sys.argv[1]
    argv = sys.argv[2:]
    previous = record(name, argv)
    key = tool_key(name)
    time.sleep(float(os.environ.get(f"KVC_STUB_SLEEP_{key}", "0")))
    fail = int(os.environ.get(f"KVC_STUB_FAIL_{key}", "0"))
    if fail < 0 or previous < fail:
        print(f"stub {name}: failing as asked", file=sys.stderr)
        return 1
    sys.stdout.write(os.environ.get(f"KVC_STUB_STDOUT_{key}", ""))
    action = BEHAVIOUR.get(name)
    return action(argv) if action else 0


if __name__ == "__main__":
    sys.exit(main())
