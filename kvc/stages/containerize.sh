#!/usr/bin/env bash
# kvc containerize stage: bake one image's multi-arch containerDisk.
#
# With registry credentials the image is pushed by digest only: no tag is
# created in the repository (a tag appears only when publish promotes the
# tested digest). Without credentials it is exported as an OCI archive, so
# pull requests from forks still build and test; in a run that publishes
# (KVC_PUBLISHES=true) missing credentials stop the stage at once instead. Either way the exact staged
# reference, repo@sha256:<index digest>, is written to $KVC_STAGED_DIR/ref,
# and test and publish read it from there: nobody derives a name from a run
# id, so re-running failed jobs (new workflow id, same workspace) still finds
# the same image. Functions can be sourced for testing.
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

# Multi-platform output and push-by-digest need a docker-container builder:
# the default "docker" driver refuses push-by-digest
# (docker/buildx@v0.36.1:build/opt.go:500-501).
ensure_builder() {
  if ! docker buildx inspect "$BUILDER" >/dev/null 2>&1; then
    docker buildx create --name "$BUILDER" --driver docker-container >/dev/null
  fi
}

# The OCI labels the bake file leaves to run time (bake reads them from the
# environment). The backend sets KVC_SOURCE and KVC_REVISION from its own
# variables; outside CI they come from the checkout.
export_label_values() {
  export KVC_SOURCE="${KVC_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}"
  export KVC_REVISION="${KVC_REVISION:-$(git rev-parse HEAD 2>/dev/null || true)}"
  export KVC_CREATED="${KVC_CREATED:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
}

has_credentials() {
  [ -n "${KVC_REGISTRY_USER:-}" ] && [ -n "${KVC_REGISTRY_PASSWORD:-}" ]
}

# The name an OCI archive carries (what `kind load image-archive` or any other
# loader registers): fixed per image, free of run ids, so a re-run writes the
# same name and the test reads it from archive-ref instead of computing it.
archive_name() {
  printf '%s:kvc-staged-%s\n' "${KVC_IMAGE:?}" "${KVC_IMAGE_SLUG:?}"
}

# The image index digest bake records in its metadata file
# (moby/buildkit@v0.32.2:exporter/containerimage/exptypes/types.go:13,
# "containerimage.digest"; written for pushes by digest and archives alike).
metadata_digest() {
  local digest
  digest="$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]\{64\}"' "$1" | head -n1 | grep -o 'sha256:[0-9a-f]\{64\}')" ||
    kvc_die "no containerimage.digest in bake metadata $1"
  printf '%s\n' "$digest"
}

# The bake target's name and output for this mode, as two --set values.
# Registry: the name is the bare repository (buildx turns a target's tags into
# the exporter's name, docker/buildx@v0.36.1:build/opt.go:409-421) and the
# image exporter pushes it by digest without any tag
# (moby/buildkit@v0.32.2:README.md:284 push-by-digest, :290 name-canonical;
# exporter/containerimage/exptypes/keys.go:19,42). Each --set value stays one
# output entry, commas and all (docker/buildx@v0.36.1:bake/bake.go:683-686).
bake_settings() {
  if has_credentials; then
    printf '%s\n' "$KVC_BAKE_TARGET.tags=$KVC_IMAGE" \
      "$KVC_BAKE_TARGET.output=type=image,push=true,push-by-digest=true,name-canonical=true"
  else
    printf '%s\n' "$KVC_BAKE_TARGET.tags=$(archive_name)" \
      "$KVC_BAKE_TARGET.output=type=oci,dest=$KVC_STAGED_DIR/image.oci.tar"
  fi
}

# Write a file of the staged directory in one rename, so a reader never sees
# half of it.
write_staged() {
  printf '%s\n' "$2" >"$KVC_STAGED_DIR/$1.tmp"
  mv -f "$KVC_STAGED_DIR/$1.tmp" "$KVC_STAGED_DIR/$1"
}

# Without credentials the image becomes an OCI archive, which tests can load but
# publish can never promote (publish.sh refuses it). In a run that publishes (the
# backend sets KVC_PUBLISHES=true on pushes to the default branch) that would
# fail only after every build and test: stop here, naming what is missing.
check_publishable() {
  if kvc_bool KVC_PUBLISHES && ! has_credentials; then
    kvc_die "this run publishes (a push to the default branch) but KVC_REGISTRY_USER/KVC_REGISTRY_PASSWORD are empty: without them the image would only be exported as an OCI archive, which publish cannot promote. Give the containerize and publish jobs the push credentials (docs/getting-started.md, 'Secrets')"
  fi
}

main() {
  kvc_require KVC_BAKE_FILE KVC_BAKE_TARGET KVC_IMAGE KVC_STAGED_DIR KVC_IMAGE_SLUG
  check_publishable
  kvc_ensure_tools docker:docker.io
  check_artifacts
  mkdir -p "$KVC_STAGED_DIR"
  # Whatever an earlier attempt staged is stale now.
  rm -f "$KVC_STAGED_DIR/ref" "$KVC_STAGED_DIR/image.oci.tar" "$KVC_STAGED_DIR/archive-ref"
  META="$(mktemp)"
  trap cleanup EXIT

  local list digest
  local -a settings
  if has_credentials; then
    kvc_login docker "$(kvc_registry_host "$KVC_IMAGE")" KVC_REGISTRY_USER KVC_REGISTRY_PASSWORD
    kvc_log "pushing $KVC_IMAGE by digest (no tag until publish)"
  else
    kvc_log "no registry credentials: exporting an OCI archive named $(archive_name) instead of pushing"
  fi
  list="$(bake_settings)"
  mapfile -t settings <<<"$list"
  ensure_builder
  export_label_values
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" docker buildx bake --builder "$BUILDER" \
    -f "$KVC_BAKE_FILE" --metadata-file "$META" \
    --set "${settings[0]}" --set "${settings[1]}" \
    "$KVC_BAKE_TARGET"
  digest="$(metadata_digest "$META")"
  if ! has_credentials; then
    write_staged archive-ref "$(archive_name)"
  fi
  write_staged ref "$KVC_IMAGE@$digest"
  kvc_log "staged $KVC_IMAGE@$digest"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
