#!/usr/bin/env bash
# kvc publish stage: promote the tested image to its final tags.
#
# Only the digest recorded by containerize in $KVC_STAGED_DIR/ref (and
# exercised by the tests) is promoted, never a tag that could have moved since:
# containerize pushed it by digest, so these are its first tags. Tags: every KVC_TAGS entry,
# one immutable <prefix>-<UTC date>-<digest prefix> tag, and latest on request.
# Functions can be sourced for testing.
set -euo pipefail

KVC_STAGE=publish
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The staged reference, validated: a repository pinned by a sha256 digest.
staged_ref() {
  local file="$KVC_STAGED_DIR/ref" ref
  [ -f "$file" ] || kvc_die "no staged reference at $file (did containerize run?)"
  if [ -f "$KVC_STAGED_DIR/image.oci.tar" ]; then
    kvc_die "the image was exported as an OCI archive, not pushed: publishing needs registry credentials in containerize"
  fi
  ref="$(head -n1 "$file")"
  [[ "$ref" =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]] || kvc_die "staged reference is not repo@sha256:<digest>: $ref"
  # Tags can only point at a digest inside their own repository.
  [ "${ref%@*}" = "${KVC_IMAGE:?}" ] || kvc_die "staged reference $ref is not in $KVC_IMAGE"
  printf '%s\n' "$ref"
}

# Docker's tag grammar; anything else is refused before touching a registry.
valid_tag() {
  [[ "$1" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]
}

# All tags to set, in order, without duplicates.
final_tags() {
  local digest="$1" tag prefix
  local -a tags=() out=()
  [[ "${KVC_TAGS:-}" != *$'\n'* ]] || kvc_die "KVC_TAGS must be one line"
  IFS=, read -r -a tags <<<"${KVC_TAGS:-}"
  prefix="${KVC_DATED_TAG_PREFIX:-${tags[0]:-}}"
  prefix="${prefix// /}"
  [ -n "$prefix" ] || kvc_die "no KVC_DATED_TAG_PREFIX and no KVC_TAGS: cannot name the immutable tag"
  tags+=("$prefix-$(date -u +%Y%m%d)-${digest:7:12}")
  kvc_bool KVC_LATEST && tags+=(latest)
  for tag in "${tags[@]}"; do
    tag="${tag// /}"
    [ -n "$tag" ] || continue
    valid_tag "$tag" || kvc_die "invalid tag: '$tag'"
    case " ${out[*]} " in
      *" $tag "*) ;;
      *) out+=("$tag") ;;
    esac
  done
  printf '%s\n' "${out[@]}"
}

# Check the signature just made against the identity this CI run signs as (the
# backend maps KVC_SIGN_ISSUER and KVC_SIGN_IDENTITY or KVC_SIGN_IDENTITY_REGEXP;
# docs/verifying.md): a signature nobody can verify with the documented identity
# fails the job instead of shipping. Retried: the registry may lag behind the push.
verify_signature() {
  local ref="$1"
  local -a identity
  [ -n "${KVC_SIGN_ISSUER:-}" ] || kvc_die "KVC_SIGN_ISSUER is not set: cannot verify the signature of $ref"
  if [ -n "${KVC_SIGN_IDENTITY:-}" ]; then
    identity=(--certificate-identity "$KVC_SIGN_IDENTITY")
  elif [ -n "${KVC_SIGN_IDENTITY_REGEXP:-}" ]; then
    identity=(--certificate-identity-regexp "$KVC_SIGN_IDENTITY_REGEXP")
  else
    kvc_die "neither KVC_SIGN_IDENTITY nor KVC_SIGN_IDENTITY_REGEXP is set: cannot verify the signature of $ref"
  fi
  kvc_log "verifying $ref: issuer $KVC_SIGN_ISSUER, identity ${identity[1]}"
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" cosign verify \
    --certificate-oidc-issuer "$KVC_SIGN_ISSUER" "${identity[@]}" "$ref" >&2 ||
    kvc_die "the signature of $ref does not verify for this run's identity"
}

# Hand the promoted digest to later steps of this job (GitHub's provenance
# attestation reads it) as a name=value line; nothing when no output file is given.
record_digest() {
  [ -n "${KVC_OUTPUT_FILE:-}" ] || return 0
  printf 'digest=%s\n' "$1" >>"$KVC_OUTPUT_FILE"
}

main() {
  kvc_require KVC_STAGED_DIR KVC_IMAGE
  local ref digest tag list
  local -a tags args=()
  ref="$(staged_ref)"
  digest="${ref##*@}"
  # Not mapfile < <(...): a failure inside process substitution is ignored.
  list="$(final_tags "$digest")"
  mapfile -t tags <<<"$list"
  kvc_ensure_tools docker:docker.io
  kvc_login docker "$(kvc_registry_host "$KVC_IMAGE")" KVC_REGISTRY_USER KVC_REGISTRY_PASSWORD
  for tag in "${tags[@]}"; do
    args+=(--tag "$KVC_IMAGE:$tag")
  done
  # Sign and verify the digest before any tag moves: the signature binds to the
  # digest, and a failed signing must not leave unsigned images under final tags.
  if kvc_bool KVC_SIGN; then
    command -v cosign >/dev/null 2>&1 || kvc_die "cosign is not installed (add a cosign install step before publish)"
    kvc_log "signing $KVC_IMAGE@$digest"
    kvc_retry 3 "${KVC_RETRY_DELAY:-10}" cosign sign --yes "$KVC_IMAGE@$digest"
    verify_signature "$KVC_IMAGE@$digest"
  fi
  kvc_log "promoting $ref to ${tags[*]}"
  # No --annotation: with one source that is an index, imagetools create pushes its
  # original bytes (docker/buildx@v0.36.1:util/imagetools/create.go:104-118), so the
  # final tags name the tested digest, attestation manifests included.
  kvc_retry 3 "${KVC_RETRY_DELAY:-10}" docker buildx imagetools create "${args[@]}" "$ref"
  record_digest "$digest"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
