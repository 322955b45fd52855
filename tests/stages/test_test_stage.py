"""The test stage: the emitted driver (test.sh) and kubevirt mode, run against stubs.

A spec is compiled into a scratch repository and the emitted .kvc/stages/test.sh
runs with the test job's own environment. kind, kubectl and virtctl reach the
stage only as downloads (curl is a stub that "downloads" one fake tool): the
pin table .kvc/stages/tools.sh is rewritten to that fake's sha256, except in
the test that proves a mismatch is refused. The runner's own kind, kubectl
and virtctl on PATH record under a different name, so using them shows.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.cli import main
from kvc.compiler.driver import load_source
from kvc.compiler.graph import TEST_UP_MINUTES, build_pipeline
from kvc.ir import Stage

from ..conftest import per_module
from .conftest import RECORD, STAGES, Stubs

REF = "ghcr.io/example/debian@sha256:" + "ab" * 32
VM = "kvc-test-debian-12"
SPEC = """\
kvc: 1
registry: ghcr.io/example
defaults:
  test:
    checks: [boot, guest-agent, ssh]
    timeout: 10m
flavors:
  debian:
    releases:
      - release_version: "12"
        release_name: bookworm
        url: "https://example.org/debian-12-{arch}.qcow2"
        release_checksum:
          amd64: "sha256:%s"
          arm64: "sha256:%s"
""" % (hashlib.sha256(b"amd64").hexdigest(),  # noqa: UP031 - the spec's own braces
       hashlib.sha256(b"arm64").hexdigest())

# The tool kind/kubectl/virtctl "downloads" become: it records its call (as
# the tool named by its file name) and answers the few questions the stage
# asks. Knobs: KVC_FAKE_CONSOLE (serial console text), KVC_FAKE_MISSING=N
# (the first N `get` calls find nothing: objects not created yet),
# KVC_FAKE_SLOW_UP=N (`kind create cluster` takes N seconds).
FAKE_TOOL = """\
#!/bin/bash
name="$(basename "$0")"
{record} "$name" "$@" || exit $?
case "$name $*" in
  "kind create cluster"*) sleep "${{KVC_FAKE_SLOW_UP:-0}}" ;;
  "kubectl get "*)
    count="$KVC_STUB_LOG.get-count"
    n=$(( $(cat "$count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" >"$count"
    [ "$n" -gt "${{KVC_FAKE_MISSING:-0}}" ] || exit 1 ;;
  "kubectl create --dry-run=client"*) printf '%s' "{vm}" ;;
  "kubectl logs"*guest-console-log*) printf '%s\\n' "${{KVC_FAKE_CONSOLE-kvc-boot-ok}}" ;;
  "kubectl create secret generic "*)
    for arg in "$@"; do
      case "$arg" in
        --from-file=*) f="${{arg#--from-file=}}"; cp "${{f#*=}}" "$KVC_STUB_LOG.secret-$4" ;;
      esac
    done ;;
  "virtctl ssh"*) echo kvc-ssh-ok ;;
  "kubectl config view"*) printf 'https://0.0.0.0:41234' ;;
esac
"""


def fake_tool(tmp: Path) -> Path:
    path = tmp / "fake-tool"
    path.write_text(FAKE_TOOL.format(record=RECORD, vm=VM))
    path.chmod(0o755)
    return path


@pytest.fixture(scope=per_module)
def compiled_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SPEC compiled once per module; each test works in its own copy."""
    root = tmp_path_factory.mktemp("compiled")
    (root / "kvc.yaml").write_text(SPEC)
    result = CliRunner().invoke(main, ["compile", str(root / "kvc.yaml"), "--backend",
                                       "github", "--out", str(root)])
    assert result.exit_code == 0, result.output
    return root


def compile_repo(stubs: Stubs, compiled_tree: Path) -> None:
    shutil.copytree(compiled_tree, stubs.root, symlinks=True, dirs_exist_ok=True)


def job_env(stubs: Stubs, arch: str) -> dict[str, str]:
    """The test job's environment exactly as kvc resolved it."""
    return dict(_test_job_envs()[arch])


@functools.cache
def _test_job_envs() -> dict[str, dict[str, str]]:
    pipeline = build_pipeline(load_source(SPEC.encode(), "kvc.yaml"))
    return {job.env_dict()["KVC_ARCH"]: job.env_dict()
            for job in pipeline.jobs if job.stage is Stage.TEST}


def pin_to(stubs: Stubs, fake: Path) -> None:
    """Point every checksum of the emitted pin table at the fake tool."""
    tools = stubs.root / ".kvc/stages/tools.sh"
    digest = hashlib.sha256(fake.read_bytes()).hexdigest()
    tools.write_text(re.sub(r" [0-9a-f]{64}\"$", f' {digest}"', tools.read_text(), flags=re.M))


def runner_tools(stubs: Stubs) -> None:
    """The runner's own kind/kubectl/virtctl: usable, but they must never run."""
    for name in ("kind", "kubectl", "virtctl"):
        stubs.add(name, f'exec {RECORD} "runner-{name}" "$@"\n')


@pytest.fixture
def stage(stubs: Stubs, tmp_path: Path, compiled_tree: Path) -> Stubs:
    compile_repo(stubs, compiled_tree)
    fake = fake_tool(tmp_path)
    pin_to(stubs, fake)
    runner_tools(stubs)
    staged = stubs.root / "artifacts/staged/debian-12"
    staged.mkdir(parents=True)
    (staged / "ref").write_text(REF + "\n")
    stubs.env |= {"KVC_STUB_CURL_SRC": str(fake), "KVC_POLL_INTERVAL": "0",
                  "KVC_TOOLS_DIR": str(tmp_path / "tools")}
    return stubs


def run(stubs: Stubs, arch: str = "amd64", **extra: str) -> subprocess.CompletedProcess[str]:
    env = job_env(stubs, arch) | {"KVC_FORCE_TCG": "true"} | extra
    return stubs.run_emitted(".kvc/stages/test.sh", env)


def argvs(stubs: Stubs, tool: str) -> list[list[str]]:
    return [c.argv for c in stubs.calls(tool)]


def waits(kubectl: list[list[str]]) -> list[tuple[int, list[str]]]:
    """(index, argv after 'wait') of every kubectl wait, namespace flags dropped."""
    return [(i, a[a.index("wait") + 1:]) for i, a in enumerate(kubectl) if "wait" in a[:3]]


def node_image() -> str:
    text = (STAGES / "tools.sh").read_text()
    match = re.search(r'^KVC_KIND_NODE_IMAGE="([^"]+)"', text, re.M)
    assert match
    return match.group(1)


# --- pure functions of the driver (sourced) ----------------------------------


def call_function(snippet: str, *args: str, env: dict[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    script = f'. "{STAGES / "test.sh"}"; {snippet}'
    return subprocess.run(["bash", "-c", script, "test", *args], capture_output=True,
                          text=True, check=False, env=env)


def mode_functions(mode: str) -> set[str]:
    """The mode_* functions defined once the driver and test-MODE.sh are sourced."""
    script = f'. "{STAGES / "test.sh"}"; . "{STAGES / f"test-{mode}.sh"}"; declare -F'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in result.stdout.splitlines()
            if line.split()[-1].startswith("mode_")}


def test_every_mode_defines_exactly_the_functions_the_driver_calls() -> None:
    """The driver over mode files (docs/stages.md, "Test modes"): each test-<mode>.sh
    defines the same mode_* functions, and those are what test.sh calls."""
    called = {name for name in re.findall(r"\bmode_[a-z_]+", (STAGES / "test.sh").read_text())
              if not name.endswith("_")}  # "mode_check_<check>" in a comment
    modes = sorted(p.stem.removeprefix("test-") for p in STAGES.glob("test-*.sh"))
    assert modes == ["kubevirt", "qemu"]
    for mode in modes:
        assert mode_functions(mode) == called, mode


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [("900", 900), ("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("08m", 480)],
)
def test_parse_timeout(spec: str, seconds: int) -> None:
    result = call_function('parse_timeout "$1"', spec)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{seconds}\n"


@pytest.mark.parametrize("spec", ["", "15x", "m", "-5m", "1.5h", "0", "15m; rm -rf /", "$(id)"])
def test_parse_timeout_rejects(spec: str) -> None:
    result = call_function('parse_timeout "$1"', spec)
    assert result.returncode != 0
    assert "KVC_TIMEOUT" in result.stderr


def test_substitute_is_literal(tmp_path: Path, hostile: str, canary: Path) -> None:
    src = tmp_path / "in"
    src.write_text("image: __KVC_IMAGE__\nkey: __KVC_SSH_PUBKEY__\n")
    image = r"reg.example/a&b\1@sha256:" + "0" * 64
    result = call_function('substitute "$1" "$2" __KVC_IMAGE__ "$3" __KVC_SSH_PUBKEY__ "$4"',
                           str(src), str(tmp_path / "out"), image, hostile)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_text() == f"image: {image}\nkey: {hostile}\n"
    assert not canary.exists()


@pytest.mark.parametrize(
    ("checks", "names"),
    [("boot,guest-agent,ssh", ["boot", "guest-agent", "ssh"]), ("ssh, boot", ["ssh", "boot"]),
     ("boot,,", ["boot"])],
)
def test_check_names(checks: str, names: list[str]) -> None:
    result = call_function('KVC_CHECKS="$1" check_names', checks)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == names


def test_unknown_check_is_rejected() -> None:
    result = call_function('KVC_CHECKS="$1" check_names', "boot,reboot")
    assert result.returncode != 0
    assert "unknown check 'reboot'" in result.stderr


# The decision table of contract 4: (requested, kvm, arch) -> mode, or refusal.
MATRIX = [
    ("auto", True, "amd64", "kubevirt"),
    ("auto", True, "arm64", "kubevirt"),
    ("auto", False, "amd64", "kubevirt"),
    ("auto", False, "arm64", "qemu"),
    ("kubevirt", True, "amd64", "kubevirt"),
    ("kubevirt", True, "arm64", "kubevirt"),
    ("kubevirt", False, "amd64", "kubevirt"),
    ("kubevirt", False, "arm64", None),
    ("qemu", True, "amd64", "qemu"),
    ("qemu", True, "arm64", "qemu"),
    ("qemu", False, "amd64", "qemu"),
    ("qemu", False, "arm64", "qemu"),
]


@pytest.mark.parametrize(("requested", "kvm", "arch", "mode"), MATRIX)
def test_mode_selection(requested: str, kvm: bool, arch: str, mode: str | None) -> None:
    probe = "return 0" if kvm else "return 1"
    snippet = (f'kvc_kvm_usable() {{ KVC_KVM_REASON=probe-says-{kvm}; {probe}; }}; '
               'select_mode; printf "%s|%s|%s\\n" "$MODE" "$KVM" "$MODE_REASON"')
    result = call_function(snippet, env={"KVC_TEST_MODE": requested, "KVC_ARCH": arch,
                                         "PATH": "/usr/bin:/bin"})
    if mode is None:
        assert result.returncode != 0
        assert "cannot emulate arm64" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    got, got_kvm, reason = result.stdout.strip().split("|")
    assert (got, got_kvm) == (mode, str(kvm).lower())
    assert f"probe-says-{kvm}" in reason  # the log says why


def test_invalid_test_mode_is_rejected() -> None:
    result = call_function("select_mode", env={"KVC_TEST_MODE": "vmware", "KVC_ARCH": "amd64",
                                               "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "invalid KVC_TEST_MODE 'vmware'" in result.stderr


# --- the emitted stage against stubs -----------------------------------------


def test_runs_every_check_with_pinned_tools_and_cleans_up(stage: Stubs, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = run(stage, KVC_SUMMARY_FILE=str(summary))
    assert result.returncode == 0, result.stderr
    tools = stage.tools()
    assert not [t for t in tools if t.startswith("runner-")], "the runner's tools were used"
    # every download is pinned in the one table, and verified (the fake matches)
    urls = [a[-1] for a in argvs(stage, "curl")]
    assert [u.rsplit("/", 1)[-1] for u in urls] == [
        "kind-linux-amd64", "kubectl", "virtctl-v1.8.2-linux-amd64",
        "kubevirt-operator.yaml", "kubevirt-cr.yaml"]
    kind = argvs(stage, "kind")
    assert kind[0] == ["create", "cluster", "--name", "kvc-debian-12", "--image", node_image(),
                       "--wait", kind[0][-1]]
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", node_image())
    assert kind[-1] == ["delete", "cluster", "--name", "kvc-debian-12"]
    assert tools[-1] == "kind"
    kubectl = argvs(stage, "kubectl")
    applies = [a for a in kubectl if a[0] == "apply"]
    assert len(applies) == 3 and all("--server-side" in a for a in applies)
    assert [w[:2] for _, w in waits(kubectl)] == [
        ["kubevirt/kubevirt", "--for=condition=Available"],
        [f"vmi/{VM}", "--for=condition=Ready"],
        [f"vmi/{VM}", "--for=condition=AgentConnected"],
    ]
    patch = [a for a in kubectl if "patch" in a]
    assert len(patch) == 1 and "useEmulation" in patch[0][-1]  # amd64 without KVM
    ssh = argvs(stage, "virtctl")[0]
    assert ssh[0] == "ssh" and ssh[-1] == f"kvc@vmi/{VM}"
    assert "--local-ssh" not in ssh  # gone from virtctl since v1.6
    assert any(a.startswith("--identity-file=") for a in ssh)
    text = summary.read_text()
    assert "mode: **kubevirt**" in text and "KVC_FORCE_TCG=true" in text
    assert "result: passed (boot, guest-agent, ssh)" in text
    assert "mode: kubevirt (" in result.stderr


@pytest.mark.parametrize("docker_host", ["tcp://docker:2376", "unix:///run/docker.sock",
                                         "tcp://127.0.0.1:2375"])
def test_a_remote_docker_daemon_gets_an_api_server_it_can_reach(
    stage: Stubs, tmp_path: Path, docker_host: str
) -> None:
    """GitLab's Docker-in-Docker service: kind's API server is on the daemon's host."""
    result = run(stage, DOCKER_HOST=docker_host)
    assert result.returncode == 0, result.stderr
    create = argvs(stage, "kind")[0]
    configs = [a for a in argvs(stage, "kubectl") if a[:2] == ["config", "set-cluster"]]
    if docker_host != "tcp://docker:2376":
        assert "--config" not in create and not configs
        return
    assert "--config" in create
    assert configs == [["config", "set-cluster", "kind-kvc-debian-12",
                        "--server=https://docker:41234", "--tls-server-name=localhost"]]


def test_user_data_reaches_the_vm_through_a_secret(stage: Stubs) -> None:
    result = run(stage)
    assert result.returncode == 0, result.stderr
    user_data = Path(str(stage.log) + ".secret-kvc-user-data").read_text()
    assert user_data.startswith("#cloud-config\n")
    assert "printf '\\nkvc-boot-ok\\n' > \"$d\"" in user_data and "/dev/ttyS0" in user_data
    assert "- ssh-ed25519 " in user_data and "__KVC_SSH_PUBKEY__" not in user_data
    assert "qemu-guest-agent" in user_data
    manifest = (stage.root / "artifacts/test-logs/debian-12-amd64/manifest.yaml").read_text()
    assert "name: kvc-user-data" in manifest and f"image: {REF}\n" in manifest
    assert "imagePullSecret: \"\"\n" in manifest  # public image: no pull secret
    assert not [a for a in argvs(stage, "kubectl") if "kvc-pull" in a]


def test_private_pull_creates_and_references_a_secret(stage: Stubs) -> None:
    password = "s3cr3t-$(touch /tmp/x)"
    result = run(stage, KVC_PULL_USER="robot", KVC_PULL_PASSWORD=password)
    assert result.returncode == 0, result.stderr
    created = [a for a in argvs(stage, "kubectl") if a[:4] == ["create", "secret", "generic",
                                                                "kvc-pull"]]
    assert len(created) == 1 and "--type=kubernetes.io/dockerconfigjson" in created[0]
    config = json.loads(Path(str(stage.log) + ".secret-kvc-pull").read_text())
    auth = config["auths"]["ghcr.io"]["auth"]
    assert base64.b64decode(auth).decode() == f"robot:{password}"
    assert not [c for c in stage.calls() if any(password in a for a in c.argv)]
    manifest = (stage.root / "artifacts/test-logs/debian-12-amd64/manifest.yaml").read_text()
    assert "imagePullSecret: kvc-pull\n" in manifest


def test_waits_only_for_objects_that_exist(stage: Stubs) -> None:
    result = run(stage, KVC_FAKE_MISSING="3")
    assert result.returncode == 0, result.stderr
    kubectl = argvs(stage, "kubectl")
    found = waits(kubectl)
    assert len(found) == 3
    for index, argv in found:
        gets = [a for a in kubectl[:index] if a[:2] == ["get", argv[0]]]
        assert gets, f"kubectl wait {argv[0]} without first seeing it exist"
    first_wait = found[0][0]
    assert len([a for a in kubectl[:first_wait] if a[0] == "get"]) == 4  # 3 misses, 1 hit


@pytest.mark.slow  # waits out a test deadline
@pytest.mark.parametrize(("console", "boots"), [
    ("[  OK  ] Started x\rkvc-boot-ok\r", True),
    ("debian login: \nkvc-boot-ok\n", True),
    ("debian login: kvc-boot-ok", False),  # the user-data starts its own line
    ("echo kvc-boot-ok", False),  # the runcmd echoed, not run
    ("kvc-boot-ok-ish", False),
])
def test_kubevirt_boot_needs_the_marker_as_a_whole_line(
        stage: Stubs, console: str, boots: bool) -> None:
    """The same proof as the qemu mode (lib.sh kvc_boot_marker): anywhere in the
    log is not enough, an echoed command line would pass."""
    result = run(stage, KVC_TIMEOUT="2s", KVC_FAKE_CONSOLE=console)
    assert ("never showed kvc-boot-ok" in result.stderr) is not boots, result.stderr


def test_the_user_data_marker_starts_its_own_line_after_a_login_prompt(
        stage: Stubs, tmp_path: Path) -> None:
    """cloud-final runs after multi-user.target, so a getty's login prompt may wait
    on the console without a newline: the emitted runcmd still leaves the marker
    on a line of its own. It runs here with a file for the serial port (its
    character-device test answered yes, its write appending), prefilled with
    such a prompt."""
    text = (stage.root / ".kvc/manifests/debian-12.user-data").read_text()
    user_data = YAML(typ="safe").load(text)
    (marker,) = [cmd[2] for cmd in user_data["runcmd"] if cmd[:2] == ["sh", "-c"]]
    console = tmp_path / "ttyS0"
    console.write_text("debian login: ")
    # A write to a device adds to what the console shows; to a file, `>` would
    # truncate it, so the file is appended to instead.
    script = (marker.replace("/dev/console /dev/ttyS0 /dev/ttyAMA0 /dev/hvc0", str(console))
              .replace('[ -c "$d" ]', "true").replace('> "$d"', '>> "$d"'))
    assert str(console) in script and "true &&" in script and '>> "$d"' in script, script
    subprocess.run(["sh", "-c", script], check=True)
    proof = subprocess.run(["bash", "-c", f'. "{STAGES / "lib.sh"}"; kvc_boot_marker'],
                           input=console.read_text(), text=True, check=False)
    assert proof.returncode == 0, console.read_text()


@pytest.mark.slow  # waits out a test deadline
def test_boot_fails_without_the_console_marker(stage: Stubs) -> None:
    result = run(stage, KVC_TIMEOUT="2s", KVC_FAKE_CONSOLE="GRUB loading...\nKernel panic")
    assert result.returncode != 0
    assert "never showed kvc-boot-ok" in result.stderr
    assert "virtctl" not in stage.tools()  # later checks never ran
    logs = stage.root / "artifacts/test-logs/debian-12-amd64"
    assert "Kernel panic" in (logs / "console.log").read_text()
    assert ["describe", f"vm/{VM}", f"vmi/{VM}"] in argvs(stage, "kubectl")
    kind = argvs(stage, "kind")
    assert any(a[:2] == ["export", "logs"] for a in kind)
    assert kind[-1] == ["delete", "cluster", "--name", "kvc-debian-12"]
    export = next(i for i, a in enumerate(kind) if a[:2] == ["export", "logs"])
    assert export < len(kind) - 1  # logs before the cluster goes


def test_failed_check_collects_logs_and_deletes_the_cluster(stage: Stubs, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = run(stage, KVC_STUB_FAIL_virtctl="-1", KVC_TIMEOUT="2s",
                 KVC_SUMMARY_FILE=str(summary))
    assert result.returncode != 0
    assert argvs(stage, "kind")[-1] == ["delete", "cluster", "--name", "kvc-debian-12"]
    assert "result: FAILED (passed: boot, guest-agent)" in summary.read_text()


def test_checksum_mismatch_refuses_the_download(stubs: Stubs, tmp_path: Path,
                                                compiled_tree: Path) -> None:
    compile_repo(stubs, compiled_tree)  # the real pin table: the fake cannot match it
    runner_tools(stubs)
    staged = stubs.root / "artifacts/staged/debian-12"
    staged.mkdir(parents=True)
    (staged / "ref").write_text(REF + "\n")
    stubs.env |= {"KVC_STUB_CURL_SRC": str(fake_tool(tmp_path)), "KVC_POLL_INTERVAL": "0",
                  "KVC_TOOLS_DIR": str(tmp_path / "tools")}
    result = run(stubs)
    assert result.returncode != 0
    assert "sha256 mismatch for https://github.com/kubernetes-sigs/kind/" in result.stderr
    assert stubs.tools() == ["curl"]  # nothing ran, not even the runner's kind
    assert not (tmp_path / "tools" / "kind").exists()


def test_archive_mode_loads_the_archive_and_boots_its_name(stage: Stubs) -> None:
    staged = stage.root / "artifacts/staged/debian-12"
    (staged / "image.oci.tar").write_bytes(b"oci")
    (staged / "archive-ref").write_text("ghcr.io/example/debian:kvc-archive\n")
    result = run(stage)
    assert result.returncode == 0, result.stderr
    assert ["load", "image-archive", "artifacts/staged/debian-12/image.oci.tar",
            "--name", "kvc-debian-12"] in argvs(stage, "kind")
    manifest = (stage.root / "artifacts/test-logs/debian-12-amd64/manifest.yaml").read_text()
    assert "image: ghcr.io/example/debian:kvc-archive\n" in manifest


def test_arm64_without_kvm_is_never_emulated_by_kubevirt(stage: Stubs) -> None:
    result = run(stage, "arm64", KVC_TEST_MODE="kubevirt")
    assert result.returncode != 0
    assert "cannot emulate arm64" in result.stderr
    assert not [a for a in argvs(stage, "kubectl") if any("useEmulation" in x for x in a)]
    assert "kind" not in stage.tools()
    auto = run(stage, "arm64")
    assert "mode: qemu (no KVM" in auto.stderr
    assert not [a for a in argvs(stage, "kubectl") if any("useEmulation" in x for x in a)]


def kvm_fixture(tmp_path: Path, nested: str) -> dict[str, str]:
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    module = tmp_path / "sys/kvm_intel/parameters"
    module.mkdir(parents=True)
    (module / "nested").write_text(nested + "\n")
    return {"KVC_KVM_DEVICE": str(device), "KVC_KVM_SYSFS": str(tmp_path / "sys")}


def test_arm64_with_kvm_runs_kubevirt_without_emulation(stage: Stubs, tmp_path: Path) -> None:
    for qemu in ("qemu-system-x86_64", "qemu-system-aarch64"):
        stage.add(qemu)  # the KVM boot probe succeeds
    env = kvm_fixture(tmp_path, "Y") | {"KVC_FORCE_TCG": "false", "KVC_CHECKS": "boot,guest-agent"}
    result = run(stage, "arm64", **env)
    assert result.returncode == 0, result.stderr
    assert "mode: kubevirt (KVM usable" in result.stderr
    assert not [a for a in argvs(stage, "kubectl") if "patch" in a]
    assert argvs(stage, "curl")[0][-1].endswith("/kind-linux-arm64")


def test_arm64_ssh_fails_closed_without_a_pinned_virtctl(stage: Stubs, tmp_path: Path) -> None:
    """Forced into kubevirt mode, ssh on arm64 stops before anything starts and says
    what to change: no checksum of virtctl v1.8.2 linux-arm64 could be traced."""
    stage.add("qemu-system-x86_64")
    stage.add("qemu-system-aarch64")
    result = run(stage, "arm64", **kvm_fixture(tmp_path, "Y"), KVC_FORCE_TCG="false",
                 KVC_TEST_MODE="kubevirt")
    assert result.returncode != 0
    assert "the ssh check needs virtctl v1.8.2 for linux-arm64" in result.stderr
    assert "set test.mode to auto or qemu" in result.stderr
    assert "kind" not in stage.tools()
    assert not argvs(stage, "curl")  # nothing unverified was downloaded


def test_arm64_ssh_with_kvm_runs_in_qemu_mode_when_virtctl_is_unpinned(
        stage: Stubs, tmp_path: Path) -> None:
    """auto picks qemu mode (with KVM) rather than a kubevirt run that cannot do ssh."""
    stage.add("qemu-system-x86_64")
    stage.add("qemu-system-aarch64")
    result = run(stage, "arm64", **kvm_fixture(tmp_path, "Y"), KVC_FORCE_TCG="false")
    assert "mode: qemu (KVM usable" in result.stderr, result.stderr
    assert "needs virtctl v1.8.2 for arm64" in result.stderr
    assert "kind" not in stage.tools()
    (tmp_path / "b").mkdir()
    amd64 = run(stage, "amd64", **kvm_fixture(tmp_path / "b", "Y"), KVC_FORCE_TCG="false")
    assert "mode: kubevirt (KVM usable" in amd64.stderr  # virtctl amd64 is pinned


# --- KVM detection in lib.sh ----------------------------------------------------


def lib(snippet: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = f'set -euo pipefail; . "{STAGES / "lib.sh"}"; {snippet}'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False,
                          env=env)


def test_unusable_kvm_device_gets_a_udev_rule_before_the_probe(stubs: Stubs,
                                                               tmp_path: Path) -> None:
    stubs.add("udevadm")
    stubs.add("sudo", f'{RECORD} sudo "$@"; exec "$@"\n')
    rules = tmp_path / "rules.d"
    rules.mkdir()
    granted = tmp_path / "granted"
    env = stubs.env | kvm_fixture(tmp_path, "N") | {"KVC_UDEV_RULES_DIR": str(rules)}
    snippet = (f'kvc_kvm_accessible() {{ [ -e "{granted}" ]; }}; '
               f'udevadm() {{ command udevadm "$@"; [ "$1" != trigger ] || touch "{granted}"; }}; '
               'kvc_kvm_probe() { echo probe >&2; return 0; }; '
               'kvc_kvm_usable; echo "$KVC_KVM_REASON"')
    result = lib(snippet, env)
    assert result.returncode == 0, result.stderr
    rule = (rules / "99-kvc-kvm.rules").read_text()
    assert 'KERNEL=="kvm"' in rule and 'MODE="0666"' in rule
    udevadm = [c.argv for c in stubs.calls("udevadm")]
    assert ["trigger", "--name-match=kvm"] in udevadm
    assert result.stderr.index("udev rule") < result.stderr.index("probe")
    assert "usable" in result.stdout


def test_inaccessible_kvm_without_sudo_is_unusable(stubs: Stubs, tmp_path: Path) -> None:
    env = stubs.env | kvm_fixture(tmp_path, "Y")
    snippet = ('kvc_kvm_accessible() { return 1; }; kvc_kvm_grant() { return 1; }; '
               'if kvc_kvm_usable; then echo yes; else echo "no: $KVC_KVM_REASON"; fi')
    result = lib(snippet, env)
    assert result.stdout.startswith("no: ") and "cannot open it" in result.stdout


@pytest.mark.parametrize(("nested", "usable"), [("Y", True), ("1", True), ("N", False)])
def test_nested_parameter_decides_when_the_probe_cannot_run(
        stubs: Stubs, tmp_path: Path, nested: str, usable: bool) -> None:
    env = stubs.env | kvm_fixture(tmp_path, nested)
    snippet = ('kvc_kvm_probe() { return 2; }; '
               'if kvc_kvm_usable; then echo "yes: $KVC_KVM_REASON"; '
               'else echo "no: $KVC_KVM_REASON"; fi')
    result = lib(snippet, env)
    assert result.stdout.startswith("yes: " if usable else "no: "), result.stderr
    assert f"nested={nested}" in result.stdout


def test_missing_kvm_device_is_unusable(stubs: Stubs, tmp_path: Path) -> None:
    env = stubs.env | {"KVC_KVM_DEVICE": str(tmp_path / "absent")}
    result = lib('kvc_kvm_usable || echo "no: $KVC_KVM_REASON"', env)
    assert "does not exist" in result.stdout


def test_kernel_is_made_readable_before_the_kvm_probe(stubs: Stubs) -> None:
    snippet = ('kvc_readable_kernel() { echo kernel; }; kvc_kvm_usable() { echo probe; '
               'KVC_KVM_REASON=x; return 1; }; kvc_log() { :; }; kvc_setup_libguestfs')
    result = lib(snippet, stubs.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["kernel", "probe"]


# --- waiting: bounded slices and a heartbeat (CircleCI's no_output_timeout) ----


POLL = """
n=0
probe() {  # not yet (1) until the 4th call, or give up (7) when asked
  n=$((n + 1))
  [ "$n" -lt 4 ] || return 0
  [ -z "${GIVE_UP:-}" ] || return 7
  return 1
}
DEADLINE=$(( $(date +%s) + ${SECONDS_LEFT:-600} ))
rc=0
kvc_poll_until "the thing" 0 probe || rc=$?
echo "rc=$rc calls=$n"
"""


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "rc=0 calls=4"),
    ({"GIVE_UP": "1"}, "rc=7 calls=1"),  # anything but 1 stops the wait at once
    ({"SECONDS_LEFT": "-1"}, "rc=1 calls=1"),  # past the deadline: one try, then no
])
def test_poll_until_outcomes(env: dict[str, str], expected: str) -> None:
    result = lib(POLL, {"PATH": "/usr/bin:/bin", "KVC_HEARTBEAT": "0", **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_poll_until_logs_while_it_waits() -> None:
    result = lib(POLL, {"PATH": "/usr/bin:/bin", "KVC_HEARTBEAT": "0"})
    beats = [line for line in result.stderr.splitlines() if "still waiting for the thing" in line]
    assert len(beats) == 3, result.stderr  # one per failed try at a 0 s heartbeat
    quiet = lib(POLL, {"PATH": "/usr/bin:/bin", "KVC_HEARTBEAT": "3600"})
    assert "still waiting" not in quiet.stderr


@pytest.mark.slow  # waits out a test deadline
def test_slow_boot_keeps_the_log_alive(stage: Stubs) -> None:
    """A VM whose console stays silent: the wait logs while it lasts (each line
    restarts CircleCI's no_output_timeout), then fails at the test deadline."""
    result = run(stage, KVC_TIMEOUT="3s", KVC_HEARTBEAT="0", KVC_POLL_INTERVAL="1",
                 KVC_FAKE_CONSOLE="Booting from Hard Disk...")
    assert result.returncode != 0
    assert "still waiting for kvc-boot-ok on the serial console" in result.stderr
    assert "never showed kvc-boot-ok" in result.stderr


@pytest.mark.slow  # real deadline waits
def test_a_slow_bring_up_does_not_eat_the_boot_budget(stage: Stubs) -> None:
    """Emulated KubeVirt can take most of test.timeout to come up: the boot and
    the checks get all of test.timeout once the cluster is up, and the bring-up
    has its own budget (KVC_UP_TIMEOUT), whose end fails the test."""
    slow = run(stage, KVC_TIMEOUT="2s", KVC_FAKE_SLOW_UP="3")
    assert slow.returncode == 0, slow.stderr
    # A silent console: the boot wait's deadline is test.timeout after the
    # bring-up, not what is left of the bring-up's budget.
    silent = run(stage, KVC_TIMEOUT="2s", KVC_UP_TIMEOUT="9s", KVC_FAKE_SLOW_UP="3",
                 KVC_HEARTBEAT="0", KVC_FAKE_CONSOLE="Booting from Hard Disk...")
    assert silent.returncode != 0
    left = re.findall(r"still waiting for kvc-boot-ok on the serial console \((\d+)s left\)",
                      silent.stderr)
    assert left and max(map(int, left)) <= 2, silent.stderr
    late = run(stage, KVC_UP_TIMEOUT="1s", KVC_FAKE_SLOW_UP="2", KVC_FAKE_MISSING="1000")
    assert late.returncode != 0
    assert "gave up waiting for kubevirt/kubevirt to be created" in late.stderr


def test_the_test_job_budget_covers_bring_up_and_test_timeout() -> None:
    """The job's limit (and CircleCI's no_output_timeout) outlasts both budgets."""
    (default,) = re.findall(r'KVC_UP_TIMEOUT:-(\d+)m', (STAGES / "test.sh").read_text())
    assert int(default) == TEST_UP_MINUTES
    pipeline = build_pipeline(load_source(SPEC.encode(), "kvc.yaml"))
    jobs = [j for j in pipeline.jobs if j.stage is Stage.TEST]
    assert jobs and all(j.timeout_minutes >= 10 + TEST_UP_MINUTES + 10 for j in jobs)


def test_kubectl_waits_are_sliced_below_the_heartbeat(stage: Stubs) -> None:
    """A kubectl wait prints nothing until it ends: one bounded by the whole 10m
    test timeout could be silent for longer than CircleCI allows."""
    result = run(stage)
    assert result.returncode == 0, result.stderr
    found = waits(argvs(stage, "kubectl"))
    assert len(found) == 3
    for _, argv in found:
        (timeout,) = [a for a in argv if a.startswith("--timeout=")]
        assert 1 <= int(timeout.removeprefix("--timeout=").removesuffix("s")) <= 30, argv


@pytest.mark.slow  # waits out a test deadline
def test_anonymous_pull_is_named_when_the_test_fails(stage: Stubs) -> None:
    """A private image without pull credentials fails with ErrImagePull after a long
    wait: the log says up front, and again at the failure, that the pull was anonymous."""
    result = run(stage, KVC_TIMEOUT="2s", KVC_FAKE_CONSOLE="")
    assert result.returncode != 0
    notes = [line for line in result.stderr.splitlines() if "no pull credentials" in line]
    assert len(notes) == 2, result.stderr
    assert "the test failed; note: no pull credentials" in notes[1]
    assert REF in notes[0]


def test_no_pull_note_with_credentials_or_an_archive(stage: Stubs) -> None:
    result = run(stage, KVC_PULL_USER="robot", KVC_PULL_PASSWORD="secret")
    assert result.returncode == 0, result.stderr
    assert "no pull credentials" not in result.stderr
