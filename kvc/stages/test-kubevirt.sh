# shellcheck shell=bash
# kvc test mode "kubevirt": boot the staged containerDisk in KubeVirt on kind.
# Sourced by test.sh, which provides WORK, DEADLINE, remaining, STAGED_REF,
# USER_DATA, SSH_KEY, KVM and the KVC_* inputs (docs/stages.md).
#
# Upstream behaviour this file relies on (checked at the source):
# - containerDisk.imagePullSecret names a docker-registry Secret:
#   kubevirt/kubevirt@v1.8.2:staging/src/kubevirt.io/api/core/v1/schema.go:1061-1065.
# - cloudInitNoCloud.secretRef reads the key "userdata" (or "userData"):
#   schema.go:176 and pkg/cloud-init/cloud-init.go:234 at the same tag.
# - The serial console is logged to the launcher pod's container
#   "guest-console-log" unless disabled (since v1.1.0):
#   pkg/virt-controller/services/serialconsolelog.go:16-63, schema.go:556-560.
# - Launcher pods carry the VMI's labels and kubevirt.io=virt-launcher:
#   pkg/virt-controller/services/template.go:1607-1615.
# - virtctl ssh USER@vmi/NAME always runs the local ssh client; its flags are
#   --identity-file, --local-ssh-opts, --command (the --local-ssh flag of
#   v1.6 is gone): pkg/virtctl/ssh/ssh.go:40-47,89-101.
# - KubeVirt's CI patches developerConfiguration.useEmulation when KVM is
#   absent: kubevirt/kubevirt.core@2.3.0:hack/e2e-setup.sh:215-218.

KV_CLUSTER=""
KV_VM=""
KV_TOOLS=""
KV_PULL_SECRET="kvc-pull"
KV_USER_DATA_SECRET="kvc-user-data"

KV_WAIT_ERROR=""

# Probes for kvc_poll_until (lib.sh): 0 done, 1 not yet; each call is bounded.
kv_exists() {
  kubectl get "$@" -o name --request-timeout=30s >/dev/null 2>&1 || return 1
}

kv_condition_met() {
  local out
  if out="$(kubectl wait "$@" --timeout="$(kvc_poll_slice)s" 2>&1)"; then
    return 0
  fi
  KV_WAIT_ERROR="$out"
  return 1
}

# wait_exists KIND/NAME [kubectl args...]: poll until the object exists.
# `kubectl wait` on an object that does not exist yet fails at once with
# NotFound, so every wait is preceded by this.
wait_exists() {
  local object="$1"
  shift
  kvc_poll_until "$object to be created" "${KVC_POLL_INTERVAL:-5}" kv_exists "$object" "$@" || {
    kvc_log "$object was never created"
    return 1
  }
}

# wait_condition KIND/NAME CONDITION [kubectl args...]: kubectl wait, in
# slices of at most 30 s so the poll logs while it waits, until the deadline.
wait_condition() {
  local object="$1" condition="$2"
  shift 2
  KV_WAIT_ERROR=""
  kvc_poll_until "$object to be $condition" "${KVC_POLL_INTERVAL:-5}" \
    kv_condition_met "$object" --for="condition=$condition" "$@" || {
    kvc_log "$object never became $condition${KV_WAIT_ERROR:+: $KV_WAIT_ERROR}"
    return 1
  }
}

# The kind, kubectl and virtctl this stage runs: always kvc's pinned,
# checksum-verified downloads, never whatever the runner has on PATH (a
# runner's kind defaults to a different Kubernetes).
kv_install_tools() {
  if [[ ",${KVC_CHECKS:-boot}," == *,ssh,* ]]; then
    kvc_pin virtctl "$KVC_KUBEVIRT_VERSION" "$KVC_ARCH" >/dev/null ||
      kvc_die "the ssh check needs virtctl $KVC_KUBEVIRT_VERSION for linux-$KVC_ARCH, which has no verified sha256 in .kvc/stages/tools.sh (KubeVirt publishes no checksum file; docs/stages.md, 'Pinned tools'): for this arch set test.mode to auto or qemu (qemu mode runs ssh without virtctl), or leave ssh out of test.checks"
  fi
  KV_TOOLS="${KVC_TOOLS_DIR:-$WORK/bin}"
  mkdir -p "$KV_TOOLS"
  kvc_fetch_pinned kind "$KVC_KIND_VERSION" "$KVC_ARCH" "$KV_TOOLS/kind"
  kvc_fetch_pinned kubectl "$KVC_KUBECTL_VERSION" "$KVC_ARCH" "$KV_TOOLS/kubectl"
  if [[ ",${KVC_CHECKS:-boot}," == *,ssh,* ]]; then
    kvc_fetch_pinned virtctl "$KVC_KUBEVIRT_VERSION" "$KVC_ARCH" "$KV_TOOLS/virtctl"
  fi
  chmod +x "$KV_TOOLS"/*
  export PATH="$KV_TOOLS:$PATH"
}

kv_install_kubevirt() {
  local manifest
  for manifest in kubevirt-operator kubevirt-cr; do
    kvc_fetch_pinned "$manifest" "$KVC_KUBEVIRT_VERSION" "$KVC_ARCH" "$WORK/$manifest.yaml"
    kvc_retry 3 "${KVC_RETRY_DELAY:-10}" kubectl apply --server-side -f "$WORK/$manifest.yaml"
  done
  if [ "$KVM" != true ]; then
    [ "$KVC_ARCH" = amd64 ] || kvc_die "refusing KubeVirt emulation on $KVC_ARCH"
    kvc_log "no KVM: KubeVirt runs the VM with software emulation"
    kubectl -n kubevirt patch kubevirt kubevirt --type=merge \
      -p '{"spec":{"configuration":{"developerConfiguration":{"useEmulation":true}}}}'
  fi
  wait_exists kubevirt/kubevirt -n kubevirt
  wait_condition kubevirt/kubevirt Available -n kubevirt
}

# The host of a remote Docker daemon (DOCKER_HOST=tcp://HOST:PORT, as with
# GitLab's Docker-in-Docker service), or nothing for a local one.
kv_remote_docker() {
  local host="${DOCKER_HOST:-}"
  [[ "$host" == tcp://* ]] || return 0
  host="${host#tcp://}"
  host="${host%%:*}"
  case "$host" in localhost | 127.0.0.1 | "") ;; *) printf '%s\n' "$host" ;; esac
}

mode_up() {
  kvc_require KVC_MANIFEST KVC_KUBEVIRT_VERSION
  [ "$KVM" = true ] || [ "$KVC_ARCH" = amd64 ] ||
    kvc_die "KubeVirt cannot emulate $KVC_ARCH; this runner has no usable KVM"
  kv_install_tools
  KV_CLUSTER="kvc-${KVC_IMAGE_SLUG:0:30}"
  kvc_log "kind $KVC_KIND_VERSION, node $KVC_KIND_NODE_IMAGE, KubeVirt $KVC_KUBEVIRT_VERSION"
  # kind's API server listens on 127.0.0.1 of the Docker host
  # (kubernetes-sigs/kind@1164f3c2:pkg/apis/config/v1alpha4/default.go:42-45);
  # with a remote daemon that is not this machine, so it listens on every
  # address and kubectl reaches it by the daemon's name, checking the
  # certificate for "localhost", which kind always puts in it (the kubeadm
  # template's certSANs, kubernetes-sigs/kind@48f2b327:pkg/cluster/internal/kubeadm/config.go;
  # set-cluster's --tls-server-name: kubernetes/kubectl@5be1f71c:pkg/cmd/config/create_cluster.go:85-86).
  local remote server
  local -a config=()
  remote="$(kv_remote_docker)"
  if [ -n "$remote" ]; then
    printf '%s\n' "kind: Cluster" "apiVersion: kind.x-k8s.io/v1alpha4" "networking:" \
      '  apiServerAddress: "0.0.0.0"' >"$WORK/kind.yaml"
    config=(--config "$WORK/kind.yaml")
  fi
  kind create cluster --name "$KV_CLUSTER" --image "$KVC_KIND_NODE_IMAGE" "${config[@]}" \
    --wait "$(remaining)s"
  if [ -n "$remote" ]; then
    server="$(kubectl config view -o "jsonpath={.clusters[?(@.name==\"kind-$KV_CLUSTER\")].cluster.server}")"
    kubectl config set-cluster "kind-$KV_CLUSTER" --server="${server/0.0.0.0/$remote}" \
      --tls-server-name=localhost >&2
  fi
  kv_install_kubevirt
}

# The image the VM boots: the staged digest from the registry, or, in
# archive mode, the name the OCI archive carries once kind has loaded it.
kv_image() {
  if [ -f "$KVC_STAGED_DIR/image.oci.tar" ]; then
    [ -f "$KVC_STAGED_DIR/archive-ref" ] || kvc_die "$KVC_STAGED_DIR has image.oci.tar but no archive-ref"
    kind load image-archive "$KVC_STAGED_DIR/image.oci.tar" --name "$KV_CLUSTER" >&2
    head -n1 "$KVC_STAGED_DIR/archive-ref"
  else
    printf '%s\n' "$STAGED_REF"
  fi
}

# A private registry needs a pull secret: a dockerconfigjson Secret written
# from the pull credentials (never on a command line), named by the
# containerDisk's imagePullSecret.
kv_pull_secret() {
  local image="$1" host auth
  if [ -z "${KVC_PULL_USER:-}" ] || [ -z "${KVC_PULL_PASSWORD:-}" ]; then
    printf '""\n'
    return 0
  fi
  host="$(kvc_registry_host "$image")"
  [ "$host" != docker.io ] || host="https://index.docker.io/v1/"
  auth="$(printf '%s:%s' "$KVC_PULL_USER" "$KVC_PULL_PASSWORD" | base64 -w0)"
  (
    umask 077
    printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$auth" >"$WORK/dockerconfig.json"
  )
  kubectl create secret generic "$KV_PULL_SECRET" --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$WORK/dockerconfig.json" >&2
  rm -f "$WORK/dockerconfig.json"
  printf '%s\n' "$KV_PULL_SECRET"
}

mode_boot() {
  local image secret
  image="$(kv_image)"
  kvc_log "booting $image"
  secret="$(kv_pull_secret "$image")"
  kubectl create secret generic "$KV_USER_DATA_SECRET" --from-file=userdata="$USER_DATA"
  substitute "$KVC_MANIFEST" "$KVC_LOG_DIR/manifest.yaml" \
    __KVC_IMAGE__ "$image" __KVC_PULL_SECRET__ "$secret"
  KV_VM="$(kubectl create --dry-run=client -o 'jsonpath={.metadata.name}' -f "$KVC_LOG_DIR/manifest.yaml")"
  kubectl apply --server-side -f "$KVC_LOG_DIR/manifest.yaml"
}

kv_console() {
  kubectl logs -l "kubevirt.io=virt-launcher,kubevirt.io/vm=$KV_VM" -c guest-console-log \
    --tail=-1 --request-timeout=30s
}

# boot: the VMI is Ready once its pod is, even with a guest stuck in its boot
# loader. Only the cloud-init marker on the serial console proves the OS ran.
# Captured, not piped into grep -q: under pipefail a kubectl cut off by
# grep's early exit (SIGPIPE) would turn a match into a failure.
kv_console_has_marker() {
  local console
  console="$(kv_console 2>/dev/null || true)"
  printf '%s\n' "$console" | kvc_boot_marker
}

mode_check_boot() {
  wait_exists "vmi/$KV_VM"
  wait_condition "vmi/$KV_VM" Ready
  kvc_poll_until "kvc-boot-ok on the serial console" "${KVC_POLL_INTERVAL:-5}" \
    kv_console_has_marker || {
    kvc_log "the serial console never showed kvc-boot-ok (console log: $KVC_LOG_DIR/console.log)"
    return 1
  }
}

mode_check_guest_agent() {
  wait_exists "vmi/$KV_VM"
  wait_condition "vmi/$KV_VM" AgentConnected
}

KV_SSH_OUT=""

# One ssh attempt; timeout and BatchMode/ConnectTimeout: a hung session must
# not outlive the deadline.
kv_ssh_ok() {
  KV_SSH_OUT="$(timeout 60 virtctl ssh --identity-file="$SSH_KEY" \
    --local-ssh-opts=-oBatchMode=yes --local-ssh-opts=-oConnectTimeout=20 \
    --local-ssh-opts=-oStrictHostKeyChecking=no \
    --local-ssh-opts=-oUserKnownHostsFile=/dev/null \
    --command='echo kvc-ssh-ok' "${KVC_SSH_USER:-kvc}@vmi/$KV_VM" 2>&1)" || return 1
  [[ "$KV_SSH_OUT" == *kvc-ssh-ok* ]] || return 1
}

# SSH needs the guest fully up (sshd, cloud-init): retry until the deadline.
mode_check_ssh() {
  wait_exists "vmi/$KV_VM"
  KV_SSH_OUT=""
  kvc_poll_until "ssh into the guest" "${KVC_POLL_INTERVAL:-10}" kv_ssh_ok || {
    kvc_log "ssh output: $KV_SSH_OUT"
    return 1
  }
}

# Everything useful for a post-mortem; never fails.
mode_collect_logs() {
  [ -n "$KV_CLUSTER" ] || return 0
  kubectl get all,vm,vmi -A -o wide >"$KVC_LOG_DIR/resources.txt" 2>&1 || true
  kubectl -n kubevirt get kubevirt kubevirt -o yaml >"$KVC_LOG_DIR/kubevirt.yaml" 2>&1 || true
  if [ -n "$KV_VM" ]; then
    kubectl describe "vm/$KV_VM" "vmi/$KV_VM" >"$KVC_LOG_DIR/vm-describe.txt" 2>&1 || true
    kv_console >"$KVC_LOG_DIR/console.log" 2>&1 || true
    kubectl logs -l "kubevirt.io=virt-launcher,kubevirt.io/vm=$KV_VM" --all-containers \
      --tail=-1 >"$KVC_LOG_DIR/virt-launcher.log" 2>&1 || true
  fi
  kubectl get events -A --sort-by=.lastTimestamp >"$KVC_LOG_DIR/events.txt" 2>&1 || true
  kind export logs "$KVC_LOG_DIR/kind" --name "$KV_CLUSTER" >/dev/null 2>&1 || true
}

mode_down() {
  [ -n "$KV_CLUSTER" ] || return 0
  kind delete cluster --name "$KV_CLUSTER" >/dev/null 2>&1 || true
}
