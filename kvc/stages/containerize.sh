#!/usr/bin/env bash
# kvc containerize stage: bake one image's multi-arch containerDisk.
#
# With registry credentials the image is pushed to a staging tag (never a
# final tag: publish promotes it only after the tests passed) and its digest is
# written to $KVC_STAGED_DIR/ref. Without credentials it is exported as an OCI
# archive next to the ref, so pull requests from forks still build and test.
set -euo pipefail

KVC_STAGE=containerize
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILDER=kvc
META=""

cleanup() {
  if [ -n "$META" ]; then
    rm -f "$META"
  fi
}

# Fail before baking when an arch's artifact is missing: bake's own error
# ("failed to compute cache key") does not say which build job went wrong.
check_artifacts() {
  local context="artifacts/build/$KVC_IMAGE_SLUG" arch
  local -a arches
  IFS=, read -r -a arches <<<"${KVC_ARCHES:-amd64}"
  for arch in "${arches[@]}"; do
    [ -f "$context/$arch/disk.qcow2" ] || kvc_die "missing build artifact $context/$arch/disk.qcow2"
  done
}

# Log in with the password on stdin, never on the command line.
login() {
  kvc_log "logging in to $(kvc_registry_host "${KVC_IMAGE:?}")"
  printf '%s' "$KVC_REGISTRY_PASSWORD" |
    docker login --username "$KVC_REGISTRY_USER" --password-stdin "$(kvc_registry_host "${KVC_IMAGE:?}")"
}

# Multi-platform output needs a docker-container builder; the default
# "docker" driver cannot export multi-arch images.
ensure_builder() {
  if ! docker buildx inspect "$BUILDER" >/dev/null 2>&1; then
    docker buildx create --name "$BUILDER" --driver docker-container >/dev/null
  fi
}

# The OCI labels the bake file leaves to run time (bake reads them from the
# environment): where the source lives, which commit, and when.
export_label_values() {
  local remote=""
  if [ -n "${GITHUB_REPOSITORY:-}" ]; then
    remote="${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY"
  elif [ -n "${CIRCLE_REPOSITORY_URL:-}" ]; then
    remote="$CIRCLE_REPOSITORY_URL"
  else
    remote="$(git config --get remote.origin.url 2>/dev/null || true)"
  fi
  export KVC_SOURCE="${KVC_SOURCE:-$remote}"
  export KVC_REVISION="${KVC_REVISION:-${GITHUB_SHA:-${CIRCLE_SHA1:-$(git rev-parse HEAD 2>/dev/null || true)}}}"
  export KVC_CREATED="${KVC_CREATED:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
}

has_credentials() {
  [ -n "${KVC_REGISTRY_USER:-}" ] && [ -n "${KVC_REGISTRY_PASSWORD:-}" ]
}

# The image digest recorded by bake in its metadata file.
metadata_digest() {
  local digest
  digest="$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]\{64\}"' "$1" | head -n1 | grep -o 'sha256:[0-9a-f]\{64\}')" ||
    kvc_die "no containerimage.digest in bake metadata $1"
  printf '%s\n' "$digest"
}

main() {
  kvc_require KVC_BAKE_FILE KVC_BAKE_TARGET KVC_IMAGE KVC_STAGED_DIR KVC_IMAGE_SLUG
  kvc_ensure_tools docker:docker.io
  check_artifacts
  mkdir -p "$KVC_STAGED_DIR"
  rm -f "$KVC_STAGED_DIR/ref" "$KVC_STAGED_DIR/image.oci.tar"
  META="$(mktemp)"
  trap cleanup EXIT

  local staging output digest
  staging="$KVC_IMAGE:$(kvc_staging_tag)"
  if has_credentials; then
    login
    output="type=registry"
  else
    kvc_log "no registry credentials: exporting an OCI archive instead of pushing"
    output="type=oci,dest=$KVC_STAGED_DIR/image.oci.tar"
  fi
  ensure_builder
  export_label_values
  kvc_log "baking $KVC_BAKE_TARGET as $staging"
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" docker buildx bake --builder "$BUILDER" \
    -f "$KVC_BAKE_FILE" --metadata-file "$META" \
    --set "$KVC_BAKE_TARGET.tags=$staging" --set "$KVC_BAKE_TARGET.output=$output" \
    "$KVC_BAKE_TARGET"
  digest="$(metadata_digest "$META")"
  printf '%s@%s\n' "$KVC_IMAGE" "$digest" >"$KVC_STAGED_DIR/ref.tmp"
  mv -f "$KVC_STAGED_DIR/ref.tmp" "$KVC_STAGED_DIR/ref"
  kvc_log "staged $(cat "$KVC_STAGED_DIR/ref")"
}

main "$@"
