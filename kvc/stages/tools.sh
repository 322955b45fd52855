# shellcheck shell=bash
# shellcheck disable=SC2034  # data, read by lib.sh and test-kubevirt.sh
# The one table of tools the test stage downloads, each pinned by sha256
# (sourced, never executed). kvc_fetch_pinned in lib.sh downloads a row and
# refuses the file unless its sha256 matches. A tool, version or arch without
# a row is not downloaded at all: the stage fails closed and says so.
#
# Where each checksum comes from (kvc never invents one):
# - kind v0.31.0 and kubectl v1.35.0, linux amd64/arm64:
#   cert-manager/makefile-modules@2fee9207736527d2ef29c14e9f3e3f88d09f68c0:
#   modules/tools/00_mod.mk:496-509 (kubectl_linux_*, kind_linux_* SHA256SUM).
# - KubeVirt v1.8.2 kubevirt-operator.yaml, kubevirt-cr.yaml and virtctl
#   linux-amd64: the same three values pinned independently by two public
#   repositories' install scripts (docs/stages.md lists them). KubeVirt
#   publishes no checksum file for its release assets, and no source pinning
#   virtctl v1.8.2 linux-arm64 was found (searched by file name and in
#   packaging that pins virtctl binaries), so arm64 has no virtctl row: test.sh
#   then runs an arm64 ssh check in qemu mode (plain ssh, no virtctl), and a
#   forced kubevirt mode stops before it starts, saying what to change.
#
# The kind node image is the default of that kind release:
# kubernetes-sigs/kind@v0.31.0:pkg/apis/config/defaults/image.go:21.

KVC_KIND_NODE_IMAGE="kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f"
# The Kubernetes minor that node runs; kvc validate checks test.kubevirt
# against KubeVirt's support table for it (kvc/compiler/kubevirt_support.py).
KVC_KIND_NODE_KUBERNETES="1.35"

# NAME VERSION ARCH URL SHA256 (ARCH "any": the same file for every arch).
KVC_TOOL_PINS=(
  "kind v0.31.0 amd64 https://github.com/kubernetes-sigs/kind/releases/download/v0.31.0/kind-linux-amd64 eb244cbafcc157dff60cf68693c14c9a75c4e6e6fedaf9cd71c58117cb93e3fa"
  "kind v0.31.0 arm64 https://github.com/kubernetes-sigs/kind/releases/download/v0.31.0/kind-linux-arm64 8e1014e87c34901cc422a1445866835d1e666f2a61301c27e722bdeab5a1f7e4"
  "kubectl v1.35.0 amd64 https://dl.k8s.io/release/v1.35.0/bin/linux/amd64/kubectl a2e984a18a0c063279d692533031c1eff93a262afcc0afdc517375432d060989"
  "kubectl v1.35.0 arm64 https://dl.k8s.io/release/v1.35.0/bin/linux/arm64/kubectl 58f82f9fe796c375c5c4b8439850b0f3f4d401a52434052f2df46035a8789e25"
  "kubevirt-operator v1.8.2 any https://github.com/kubevirt/kubevirt/releases/download/v1.8.2/kubevirt-operator.yaml 57e0822062e6617964fd7e1731f9ace531f8ee34a0e48cf8dd0ccce72196e1d6"
  "kubevirt-cr v1.8.2 any https://github.com/kubevirt/kubevirt/releases/download/v1.8.2/kubevirt-cr.yaml 43106136dbce3312bdbfdeae612aacafc6c12da518d233f90645b4685d84a2af"
  "virtctl v1.8.2 amd64 https://github.com/kubevirt/kubevirt/releases/download/v1.8.2/virtctl-v1.8.2-linux-amd64 745f3c58c6a77be65b828e67b6ad930e9039ab293ed5b2bef6d44c8681af5b75"
)

# The versions of kind and kubectl kvc uses (one row each per arch above).
KVC_KIND_VERSION="v0.31.0"
KVC_KUBECTL_VERSION="v1.35.0"
