#!/usr/bin/env bash
# kvc test stage: boot the staged containerDisk in KubeVirt on kind.
#
# kind cluster -> KubeVirt (emulation when KVM is unusable) -> staged image
# into the cluster -> apply the VM manifest -> checks from KVC_CHECKS, all
# within KVC_TIMEOUT. Logs land in KVC_LOG_DIR and the cluster is deleted on
# every exit path. Functions can be sourced for testing (main runs only when
# the file is executed).
set -euo pipefail

KVC_STAGE="test"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Pinned tool versions, downloaded on CI when the runner lacks them.
KIND_VERSION="${KVC_KIND_VERSION:-v0.31.0}"
KUBECTL_VERSION="${KVC_KUBECTL_VERSION:-v1.34.1}"

CLUSTER=""
DEADLINE=0
WORK=""
VM=""

# parse_timeout 15m|90s|1h30m|600 -> seconds on stdout.
parse_timeout() {
  local spec="$1" total=0 rest n unit
  [[ "$spec" =~ ^([0-9]+[smh]?)+$ ]] || kvc_die "invalid KVC_TIMEOUT '$spec' (e.g. 900, 90s, 15m, 1h30m)"
  rest="$spec"
  while [ -n "$rest" ]; do
    [[ "$rest" =~ ^([0-9]+)([smh]?)(.*)$ ]]
    n=$((10#${BASH_REMATCH[1]}))
    unit="${BASH_REMATCH[2]}"
    rest="${BASH_REMATCH[3]}"
    case "$unit" in
      h) total=$((total + n * 3600)) ;;
      m) total=$((total + n * 60)) ;;
      *) total=$((total + n)) ;;
    esac
  done
  [ "$total" -gt 0 ] || kvc_die "KVC_TIMEOUT must be positive: '$spec'"
  printf '%s\n' "$total"
}

# Seconds left of the stage's budget (at least 1, so waits still poll once).
remaining() {
  local left=$((DEADLINE - $(date +%s)))
  [ "$left" -ge 1 ] || left=1
  printf '%s\n' "$left"
}

# substitute_manifest SRC DEST IMAGE PUBKEY: literal replacement of the
# placeholders. The replacement strings are quoted so bash treats '&' and '\'
# in them literally (patsub_replacement), and nothing is passed to sed.
substitute_manifest() {
  local src="$1" dest="$2" image="$3" pubkey="$4" content
  content="$(<"$src")"
  content="${content//__KVC_IMAGE__/"$image"}"
  content="${content//__KVC_SSH_PUBKEY__/"$pubkey"}"
  printf '%s\n' "$content" >"$dest"
}

# check_names: the requested checks, validated before any cluster exists.
check_names() {
  local check
  local -a checks
  IFS=, read -r -a checks <<<"${KVC_CHECKS:-boot}"
  for check in "${checks[@]}"; do
    check="${check// /}"
    case "$check" in
      boot | guest-agent | ssh) printf '%s\n' "$check" ;;
      "") ;;
      *) kvc_die "unknown check '$check' (boot, guest-agent, ssh)" ;;
    esac
  done
}

check_boot() {
  kvc_log "check boot: waiting for VMI $VM to be Ready"
  kubectl wait "vmi/$VM" --for=condition=Ready --timeout="$(remaining)s"
}

check_guest_agent() {
  kvc_log "check guest-agent: waiting for AgentConnected on $VM"
  kubectl wait "vmi/$VM" --for=condition=AgentConnected --timeout="$(remaining)s"
}

# SSH needs the guest fully up (sshd, cloud-init): retry until the deadline.
check_ssh() {
  local out
  kvc_log "check ssh: running a command as ${KVC_SSH_USER:-kvc} over SSH"
  while :; do
    if out="$(virtctl ssh --local-ssh --identity-file="$WORK/id_ed25519" \
      --local-ssh-opts=-oStrictHostKeyChecking=no \
      --local-ssh-opts=-oUserKnownHostsFile=/dev/null \
      --command 'echo kvc-ssh-ok' "${KVC_SSH_USER:-kvc}@vmi/$VM" 2>&1)" &&
      [[ "$out" == *kvc-ssh-ok* ]]; then
      return 0
    fi
    [ "$(date +%s)" -lt "$DEADLINE" ] || { kvc_log "ssh output: $out"; return 1; }
    sleep 10
  done
}

run_check() {
  case "$1" in
    boot) check_boot ;;
    guest-agent) check_guest_agent ;;
    ssh) check_ssh ;;
  esac
}

# Download a pinned binary into the tools dir, verifying it when the
# project publishes a checksum next to it.
install_binary() {
  local name="$1" url="$2" sum_url="${3:-}" dest expected
  dest="$TOOLS/$name"
  kvc_retry 3 5 curl --fail --location --silent --show-error --output "$dest.tmp" -- "$url"
  if [ -n "$sum_url" ]; then
    expected="$(kvc_retry 3 5 curl --fail --location --silent --show-error -- "$sum_url")"
    expected="${expected%% *}"
    [ "$(sha256sum "$dest.tmp" | cut -d' ' -f1)" = "$expected" ] || kvc_die "checksum mismatch for $url"
  fi
  chmod +x "$dest.tmp"
  mv -f "$dest.tmp" "$dest"
}

ensure_cluster_tools() {
  local arch="${KVC_ARCH:-amd64}" v="$KVC_KUBEVIRT_VERSION"
  TOOLS="${KVC_TOOLS_DIR:-$HOME/.local/bin}"
  mkdir -p "$TOOLS"
  export PATH="$TOOLS:$PATH"
  local absent=false tool
  for tool in kind kubectl virtctl; do
    command -v "$tool" >/dev/null 2>&1 || absent=true
  done
  [ "$absent" = true ] || return 0
  kvc_may_install || kvc_die "kind, kubectl and virtctl are required (set CI=true to download pinned versions)"
  command -v kind >/dev/null 2>&1 || install_binary kind \
    "https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-linux-$arch" \
    "https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-linux-$arch.sha256sum"
  command -v kubectl >/dev/null 2>&1 || install_binary kubectl \
    "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/$arch/kubectl" \
    "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/$arch/kubectl.sha256"
  command -v virtctl >/dev/null 2>&1 || install_binary virtctl \
    "https://github.com/kubevirt/kubevirt/releases/download/$v/virtctl-$v-linux-$arch"
}

install_kubevirt() {
  local base="https://github.com/kubevirt/kubevirt/releases/download/$KVC_KUBEVIRT_VERSION"
  kvc_retry 3 10 kubectl apply -f "$base/kubevirt-operator.yaml"
  kvc_retry 3 10 kubectl apply -f "$base/kubevirt-cr.yaml"
  if ! kvc_kvm_usable; then
    kvc_log "KVM missing or unusable: KubeVirt runs VMs with software emulation"
    kubectl -n kubevirt patch kubevirt kubevirt --type=merge \
      -p '{"spec":{"configuration":{"developerConfiguration":{"useEmulation":true}}}}'
  fi
  kubectl -n kubevirt wait kv kubevirt --for=condition=Available --timeout="$(remaining)s"
}

# The image reference the VM uses: by digest from the registry, or the
# name an OCI archive carries (archive-ref), loaded into the kind node.
staged_image() {
  local ref
  ref="$(head -n1 "$KVC_STAGED_DIR/ref")"
  if [ -f "$KVC_STAGED_DIR/image.oci.tar" ]; then
    kind load image-archive "$KVC_STAGED_DIR/image.oci.tar" --name "$CLUSTER" >&2
    ref="$(head -n1 "$KVC_STAGED_DIR/archive-ref")"
  fi
  printf '%s\n' "$ref"
}

# Everything useful for a post-mortem; failures here must not mask the
# stage's own result.
collect_logs() {
  mkdir -p "$KVC_LOG_DIR"
  kubectl get all,vm,vmi -A -o wide >"$KVC_LOG_DIR/resources.txt" 2>&1 || true
  if [ -n "$VM" ]; then
    kubectl describe "vm/$VM" "vmi/$VM" >"$KVC_LOG_DIR/vm-describe.txt" 2>&1 || true
    kubectl logs -l "vm.kubevirt.io/name=$VM" --all-containers --tail=-1 \
      >"$KVC_LOG_DIR/virt-launcher.log" 2>&1 || true
  fi
  kubectl get events -A --sort-by=.lastTimestamp >"$KVC_LOG_DIR/events.txt" 2>&1 || true
  kind export logs "$KVC_LOG_DIR/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
}

cleanup() {
  local rc=$?
  if [ -n "$CLUSTER" ]; then
    collect_logs
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}

main() {
  kvc_require KVC_STAGED_DIR KVC_MANIFEST KVC_KUBEVIRT_VERSION KVC_LOG_DIR KVC_IMAGE_SLUG
  local -a checks
  local list timeout check image pubkey=""
  list="$(check_names)"
  mapfile -t checks <<<"$list"
  timeout="$(parse_timeout "${KVC_TIMEOUT:-15m}")"
  DEADLINE=$(($(date +%s) + timeout))
  [ -f "$KVC_STAGED_DIR/ref" ] || kvc_die "no staged image at $KVC_STAGED_DIR/ref"
  ensure_cluster_tools
  mkdir -p "$KVC_LOG_DIR"
  WORK="$(mktemp -d)"
  CLUSTER="kvc-${KVC_IMAGE_SLUG:0:30}"
  trap cleanup EXIT
  ssh-keygen -q -t ed25519 -N '' -C kvc-test -f "$WORK/id_ed25519"
  pubkey="$(<"$WORK/id_ed25519.pub")"
  kind create cluster --name "$CLUSTER" --wait "$(remaining)s"
  install_kubevirt
  image="$(staged_image)"
  kvc_log "testing $image"
  substitute_manifest "$KVC_MANIFEST" "$KVC_LOG_DIR/manifest.yaml" "$image" "$pubkey"
  VM="$(kubectl create --dry-run=client -o 'jsonpath={.metadata.name}' -f "$KVC_LOG_DIR/manifest.yaml")"
  kubectl apply -f "$KVC_LOG_DIR/manifest.yaml"
  for check in "${checks[@]}"; do
    [ -n "$check" ] || continue
    run_check "$check"
    kvc_log "check $check passed"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
