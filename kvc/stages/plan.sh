#!/usr/bin/env bash
# kvc plan stage: decide, per image, whether its jobs run (contract 7, docs/plan.md).
#
# Input: the generated .kvc/plan.tsv (one line per image: slug, image id,
# repository, fingerprint, refresh seconds, tags; read as data, never
# evaluated), KVC_FORCE (empty, "all", or comma-separated slugs or image ids)
# KVC_PLAN_DIR, and optionally KVC_PLAN_IMAGES (the slugs this plan covers; default
# all). Output: plan.json, run.txt, rebuild.txt and a Markdown table appended to
# KVC_SUMMARY_FILE. rebuild.txt lists the images that run because they were
# forced, are due for a refresh, their last publish stopped half way, or the
# plan could not read the registry (it cannot tell whether a refresh ran): their
# build jobs must not restore the build cache, which is keyed by the unchanged
# fingerprint and would hand back the old disk (a refresh exists to pick up new
# upstream images and updates). A cache key once written is never overwritten
# (actions/cache@v5.0.5:tips-and-workarounds.md:9-11; circleci/circleci-docs@9734a1410cc9:
# docs/guides/modules/optimize/pages/caching.adoc:25), so after a refresh that
# published only some tags the cache still holds the disk from before it. An image runs when it is forced, when nothing is published
# under its first tag, when the published dev.kvc.fingerprint label differs,
# when its last publish stopped half way (its tags point at different images),
# or when the published image is older than its refresh age. Anything that
# keeps the registry from being read makes the image run: the plan fails open.
# Functions can be sourced for testing (main runs only when executed).
#
# The registry is read over the OCI distribution API with curl, without
# pulling a layer: the manifest (or index, then one platform's manifest), then
# the small config blob that holds the labels
# (opencontainers/distribution-spec@v1.1.1:spec.md:150-174,190,770-771).
# Public images need no credentials: a 401 names a token service in its
# WWW-Authenticate header, which hands out anonymous pull tokens
# (distribution/distribution@v3.1.1:docs/content/spec/auth/token.md:51-84,145-149).
# KVC_PULL_USER/KVC_PULL_PASSWORD, when set, are sent to that token service
# as basic auth, which is how a login exchanges them for a pull token (token.md
# above, "Requesting a Token"); a CI token with read access to a private image
# (GitHub's run token with packages: read on ghcr.io, GitLab's job token)
# reads its label that way. A registry that asks for basic auth itself
# (WWW-Authenticate: Basic, e.g. distribution with htpasswd) gets them on each
# request instead.
set -euo pipefail

KVC_STAGE=plan
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PLAN_DATA="${KVC_PLAN_DATA:-$(dirname "${BASH_SOURCE[0]}")/../plan.tsv}"
ACCEPT="application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
TMP=""
# Set by read_published for the image being planned.
PUB_FINGERPRINT=""
PUB_CREATED=""
PUB_DIGEST=""
# Set by registry_get: why the last request failed ("" on success), and its status.
FAIL=""
STATUS=""
TOKEN=""
BASIC=false
TAG_DIGEST=""
STALE=""

cleanup() {
  if [ -n "$TMP" ]; then
    rm -rf "$TMP"
  fi
}

# JSON string literal of $1 (control characters other than \n, \t, \r dropped).
json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\t'/\\t}"
  s="${s//$'\r'/\\r}"
  s="$(printf '%s' "$s" | LC_ALL=C tr -d '\000-\037')"
  printf '"%s"' "$s"
}

# Split REPOSITORY into the API base URL and the repository name.
# Docker Hub's API lives at registry-1.docker.io and names official images
# library/NAME; loopback registries (tests, local mirrors) speak plain http.
api_base() {
  local repo="$1" host name
  host="$(kvc_registry_host "$repo")"
  if [ "$host" = docker.io ]; then
    name="${repo#docker.io/}"
    [[ "$name" == */* ]] || name="library/$name"
    printf 'https://registry-1.docker.io\t%s\n' "$name"
    return
  fi
  name="${repo#"$host"/}"
  case "$host" in
    localhost | localhost:* | 127.* | '[::1]'*) printf 'http://%s\t%s\n' "$host" "$name" ;;
    *) printf 'https://%s\t%s\n' "$host" "$name" ;;
  esac
}

# The registry host of an API base URL (registry-1.docker.io stands for docker.io).
registry_host_of() {
  local host="${1#*://}"
  [ "$host" != registry-1.docker.io ] || host=docker.io
  printf '%s\n' "$host"
}

# curl with bounded time: an unreachable registry must not stall the plan.
fetch() {
  curl -sS -L --connect-timeout "${KVC_PLAN_CONNECT_TIMEOUT:-10}" --max-time "${KVC_PLAN_MAX_TIME:-30}" \
    --retry 2 --retry-delay 2 "$@"
}

# Pull credentials go only to the registry they are for (KVC_PULL_REGISTRY, when
# set), never to every token service a plan over several registries meets.
pull_credentials_for() {
  [ -n "${KVC_PULL_USER:-}" ] && [ -n "${KVC_PULL_PASSWORD:-}" ] &&
    { [ -z "${KVC_PULL_REGISTRY:-}" ] || [ "$KVC_PULL_REGISTRY" = "$1" ]; }
}

# The pull credentials as a curl config line: credentials go to curl on stdin as
# a quoted config value (--config -), never on its command line.
pull_config() {
  local user="${KVC_PULL_USER:-}:${KVC_PULL_PASSWORD:-}"
  user="${user//\\/\\\\}"
  user="${user//\"/\\\"}"
  printf 'user = "%s"\n' "$user"
}

# An anonymous (or KVC_PULL_*) pull token from the realm named in HEADERS,
# for repository NAME on registry HOST; or, when the registry asks for basic
# auth, BASIC=true with credentials for HOST.
get_token() {
  local headers="$1" name="$2" host="$3" line realm="" service=""
  local -a query=()
  line="$(grep -i '^www-authenticate:' "$headers" | tail -n1 | tr -d '\r')" || true
  [[ "$line" =~ realm=\"([^\"]*)\" ]] && realm="${BASH_REMATCH[1]}"
  [[ "$line" =~ service=\"([^\"]*)\" ]] && service="${BASH_REMATCH[1]}"
  if [[ "$line" =~ ^[Ww][Ww][Ww]-[Aa]uthenticate:[[:space:]]*[Bb]asic ]]; then
    if ! pull_credentials_for "$host"; then
      FAIL="the registry asks for a login and no pull credentials were given (private image? set KVC_PULL_USER/KVC_PULL_PASSWORD)"
      return 1
    fi
    BASIC=true
    return 0
  fi
  if [ -z "$realm" ] || [[ "$line" != *[Bb]earer* ]]; then
    FAIL="authentication required and no bearer token service offered"
    return 1
  fi
  query=(-G -o "$TMP/token.json" --data-urlencode "service=$service"
    --data-urlencode "scope=repository:$name:pull" "$realm")
  if ! if pull_credentials_for "$host"; then
    pull_config | fetch --config - "${query[@]}" 2>"$TMP/err"
  else
    fetch "${query[@]}" 2>"$TMP/err"
  fi; then
    FAIL="token service unreachable: $(tail -n1 "$TMP/err" | head -c 200)"
    return 1
  fi
  TOKEN="$(jq -r '.token // .access_token // empty' "$TMP/token.json" 2>/dev/null)" || TOKEN=""
  if [ -z "$TOKEN" ]; then
    FAIL="token service gave no token (private image? set KVC_PULL_USER/KVC_PULL_PASSWORD)"
    return 1
  fi
}

# fetch, with the pull credentials as basic auth once the registry asked for it.
request() {
  if [ "$BASIC" = true ]; then
    pull_config | fetch --config - "$@"
  else
    fetch "$@"
  fi
}

# registry_get BASE NAME PATH OUT [HEAD]: GET (or HEAD: headers only, in
# $TMP/headers) BASE/v2/NAME/PATH into OUT, with a token when the registry asks
# for one. Sets STATUS; FAIL on anything but 200/404.
registry_get() {
  local base="$1" name="$2" path="$3" out="$4" method="${5:-GET}"
  local -a headers=(-H "Accept: $ACCEPT")
  [ "$method" != HEAD ] || headers+=(--head)
  FAIL=""
  [ -z "$TOKEN" ] || headers+=(-H "Authorization: Bearer $TOKEN")
  # A registry found unreachable once is not asked again for every other image.
  if [ -f "$TMP/down" ] && grep -Fqx -- "$base" "$TMP/down"; then
    FAIL="registry unreachable: $base did not answer earlier in this plan"
    return 1
  fi
  if ! STATUS="$(request -o "$out" -D "$TMP/headers" -w '%{http_code}' "${headers[@]}" \
    "$base/v2/$name/$path" 2>"$TMP/err")"; then
    FAIL="registry unreachable: $(tail -n1 "$TMP/err" | head -c 200)"
    printf '%s\n' "$base" >>"$TMP/down"
    return 1
  fi
  if [ "$STATUS" = 401 ] && [ -z "$TOKEN" ] && [ "$BASIC" = false ]; then
    get_token "$TMP/headers" "$name" "$(registry_host_of "$base")" || return 1
    registry_get "$@"
    return
  fi
  case "$STATUS" in
    200 | 404) return 0 ;;
    *) FAIL="registry answered HTTP $STATUS for $path"; return 1 ;;
  esac
}

# header_digest: the sha256 Docker-Content-Digest of the last answer, or failure.
header_digest() {
  local digest
  digest="$(grep -i '^docker-content-digest:' "$TMP/headers" | tail -n1 | tr -d '\r' |
    sed 's/^[^:]*:[[:space:]]*//')" || return 1
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || return 1
  printf '%s\n' "$digest"
}

# tag_digest BASE NAME TAG: sets TAG_DIGEST to the digest TAG points at ("" when
# absent); 1 with FAIL set. It sets globals rather than printing, so that FAIL
# reaches the plan's log instead of dying in a subshell. A HEAD of the manifest answers
# with its digest in Docker-Content-Digest (a SHOULD:
# opencontainers/distribution-spec@v1.1.1:spec.md:206-213,771), and Docker Hub
# counts a manifest GET against the pull rate limit but not a HEAD
# (docker/docs@bb3cdd21c88e:content/manuals/docker-hub/usage/pulls.md:200-202).
# Without a sha256 header, or when HEAD is refused, the GET's body is hashed.
tag_digest() {
  local base="$1" name="$2" tag="$3" digest=""
  TAG_DIGEST=""
  if registry_get "$base" "$name" "manifests/$tag" "$TMP/tag.json" HEAD; then
    [ "$STATUS" != 404 ] || return 0
    if digest="$(header_digest)"; then
      TAG_DIGEST="$digest"
      return 0
    fi
  fi
  registry_get "$base" "$name" "manifests/$tag" "$TMP/tag.json" || return 1
  [ "$STATUS" != 404 ] || return 0
  TAG_DIGEST="sha256:$(sha256sum "$TMP/tag.json" | cut -d' ' -f1)"
}

# read_published REPOSITORY TAG: sets PUB_* from the image under TAG. Returns
# 0 when read (PUB_DIGEST "" when nothing is published), 1 with FAIL set.
read_published() {
  local repo="$1" tag="$2" base name digest config
  PUB_FINGERPRINT="" PUB_CREATED="" PUB_DIGEST="" TOKEN="" BASIC=false
  IFS=$'\t' read -r base name <<<"$(api_base "$repo")"
  registry_get "$base" "$name" "manifests/$tag" "$TMP/manifest.json" || return 1
  [ "$STATUS" = 200 ] || return 0
  # The registry's own digest when it names one, as the other tags' HEADs do:
  # both sides of the comparison then come from the registry.
  PUB_DIGEST="$(header_digest)" ||
    PUB_DIGEST="sha256:$(sha256sum "$TMP/manifest.json" | cut -d' ' -f1)"
  # An index: any platform's config carries the labels (bake sets them on every
  # platform); attestation manifests are marked with the platform unknown/unknown.
  digest="$(jq -r 'if .manifests then ([.manifests[] | select((.platform.os // "") != "unknown")][0].digest // "") else "" end' \
    "$TMP/manifest.json" 2>/dev/null)" || { FAIL="the published manifest is not JSON"; return 1; }
  if [ -n "$digest" ]; then
    registry_get "$base" "$name" "manifests/$digest" "$TMP/manifest.json" || return 1
    [ "$STATUS" = 200 ] || { FAIL="the index names a missing manifest $digest"; return 1; }
  fi
  config="$(jq -r '.config.digest // empty' "$TMP/manifest.json" 2>/dev/null)" || config=""
  [[ "$config" =~ ^sha256:[0-9a-f]{64}$ ]] || { FAIL="the published manifest has no config"; return 1; }
  registry_get "$base" "$name" "blobs/$config" "$TMP/config.json" || return 1
  [ "$STATUS" = 200 ] || { FAIL="the config blob $config is missing"; return 1; }
  PUB_FINGERPRINT="$(jq -r '.config.Labels["dev.kvc.fingerprint"] // empty' "$TMP/config.json" 2>/dev/null)" || PUB_FINGERPRINT=""
  PUB_CREATED="$(jq -r '.config.Labels["org.opencontainers.image.created"] // empty' "$TMP/config.json" 2>/dev/null)" || PUB_CREATED=""
}

# Whether the image is named by KVC_FORCE (all, its slug or its image id).
forced() {
  local slug="$1" image="$2" item
  local -a items=()
  IFS=, read -r -a items <<<"${KVC_FORCE:-}"
  for item in "${items[@]}"; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    [ "$item" = all ] || [ "$item" = "$slug" ] || [ "$item" = "$image" ] && return 0
  done
  return 1
}

# Whether this plan covers SLUG: every image, or those KVC_PLAN_IMAGES lists
# (a backend that splits its pipeline plans each part on its own).
planned() {
  [ -z "${KVC_PLAN_IMAGES:-}" ] || [[ ",$KVC_PLAN_IMAGES," == *",$1,"* ]]
}

# Warn about KVC_FORCE entries that name no image (a typo forces nothing).
check_force() {
  local item known
  local -a items=()
  known="$(cut -f1,2 "$PLAN_DATA" | grep -v '^#' | tr '\t' '\n')"
  IFS=, read -r -a items <<<"${KVC_FORCE:-}"
  for item in "${items[@]}"; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    if [ -z "$item" ] || [ "$item" = all ]; then
      continue
    fi
    grep -Fqx -- "$item" <<<"$known" || kvc_log "warning: KVC_FORCE names no image: '$item'"
  done
}

# The published image's age in seconds, or "" when its created label is unusable.
age_seconds() {
  local created
  created="$(date -u -d "$1" +%s 2>/dev/null)" || return 0
  printf '%s\n' "$(($(date -u +%s) - created))"
}

# stale_tag REPOSITORY TAG...: sets STALE to the first other moving tag that
# still points elsewhere (the last publish stopped half way), "" when none; 1
# with FAIL set when a tag cannot be read.
stale_tag() {
  local repo="$1" base name tag
  shift
  STALE=""
  IFS=$'\t' read -r base name <<<"$(api_base "$repo")"
  for tag in "$@"; do
    tag_digest "$base" "$name" "$tag" || return 1
    if [ "$TAG_DIGEST" != "$PUB_DIGEST" ]; then
      STALE="$tag"
      return 0
    fi
  done
}

# decide SLUG IMAGE REPOSITORY FINGERPRINT REFRESH TAGS: prints "true|false<TAB>reason".
decide() {
  local slug="$1" image="$2" repo="$3" fp="$4" refresh="$5" tags="$6" age
  local -a tag_list=()
  IFS=, read -r -a tag_list <<<"$tags"
  if forced "$slug" "$image"; then
    printf 'true\tforced (KVC_FORCE)\n'
    return
  fi
  if [ "${#tag_list[@]}" -eq 0 ]; then
    printf 'true\tno tag to compare with (publish.tags is empty)\n'
    return
  fi
  if ! read_published "$repo" "${tag_list[0]}"; then
    kvc_log "warning: cannot read $repo:${tag_list[0]}: $FAIL; $image runs (the plan fails open)"
    printf 'true\tregistry unreadable, running (fail open): %s\n' "$FAIL"
    return
  fi
  if [ -z "$PUB_DIGEST" ]; then
    printf 'true\tnot published yet (%s:%s not found)\n' "$repo" "${tag_list[0]}"
  elif [ -z "$PUB_FINGERPRINT" ]; then
    printf 'true\tthe published image has no dev.kvc.fingerprint label\n'
  elif [ "$PUB_FINGERPRINT" != "$fp" ]; then
    printf 'true\tchanged: published fingerprint %s, now %s\n' "$PUB_FINGERPRINT" "$fp"
  elif ! stale_tag "$repo" "${tag_list[@]:1}"; then
    kvc_log "warning: cannot compare the tags of $repo: $FAIL; $image runs (the plan fails open)"
    printf 'true\tregistry unreadable, running (fail open): %s\n' "$FAIL"
  elif [ -n "$STALE" ]; then
    printf 'true\tlast publish incomplete: %s:%s is not the image under %s\n' "$repo" "$STALE" "${tag_list[0]}"
  elif [ "$refresh" -gt 0 ] && age="$(age_seconds "$PUB_CREATED")" && [ -z "$age" ]; then
    printf 'true\trefresh due: the published image has no usable creation date\n'
  elif [ "$refresh" -gt 0 ] && [ "$age" -ge "$refresh" ]; then
    printf 'true\trefresh due: published %s, older than %ss\n' "$PUB_CREATED" "$refresh"
  else
    printf 'false\tunchanged: published fingerprint matches\n'
  fi
}

# A line of plan.tsv, checked field by field before any of it is used.
valid_row() {
  [[ "$1" =~ ^[A-Za-z0-9_-]+$ ]] && [[ "$3" =~ ^[a-z0-9._:/-]+$ ]] &&
    [[ "$4" =~ ^[0-9a-f]+$ ]] && [[ "$5" =~ ^[0-9]+$ ]] && [[ "$6" =~ ^[A-Za-z0-9_.,-]*$ ]]
}

main() {
  kvc_require KVC_PLAN_DIR
  [ -f "$PLAN_DATA" ] || kvc_die "no plan data at $PLAN_DATA (run kvc compile)"
  mkdir -p "$KVC_PLAN_DIR"
  TMP="$(mktemp -d)"
  trap cleanup EXIT
  local offline="" slug image repo fp refresh tags decision run reason sep="" json=""
  local table="" count=0 runs=0
  # In a subshell: kvc_ensure_tools exits when it cannot install, and the plan fails open.
  (kvc_ensure_tools curl:curl jq:jq) 2>"$TMP/tools" ||
    offline="cannot read registries: $(tr '\n' ' ' <"$TMP/tools")"
  [ -z "${KVC_FORCE:-}" ] || check_force
  : >"$KVC_PLAN_DIR/run.txt"
  : >"$KVC_PLAN_DIR/rebuild.txt"
  while IFS=$'\t' read -r slug image repo fp refresh tags; do
    if [ -z "$slug" ] || [[ "$slug" == \#* ]] || ! planned "$slug"; then
      continue
    fi
    valid_row "$slug" "$image" "$repo" "$fp" "$refresh" "$tags" ||
      kvc_die "malformed line in $PLAN_DATA for '$slug' (regenerate with kvc compile)"
    if [ -n "$offline" ] && ! forced "$slug" "$image"; then
      decision="$(printf 'true\tregistry unreadable, running (fail open): %s' "$offline")"
      kvc_log "warning: $offline; $image runs (the plan fails open)"
    else
      decision="$(decide "$slug" "$image" "$repo" "$fp" "$refresh" "$tags")"
    fi
    run="${decision%%$'\t'*}"
    reason="${decision#*$'\t'}"
    count=$((count + 1))
    if [ "$run" = true ]; then
      runs=$((runs + 1))
      printf '%s\n' "$slug" >>"$KVC_PLAN_DIR/run.txt"
      case "$reason" in
        forced* | "refresh due"* | "last publish incomplete"* | "registry unreadable"*)
          printf '%s\n' "$slug" >>"$KVC_PLAN_DIR/rebuild.txt" ;;
      esac
    fi
    kvc_log "$image: $([ "$run" = true ] && echo run || echo skip): $reason"
    json+="$sep{\"image\": $(json_str "$image"), \"slug\": $(json_str "$slug"), \"run\": $run, \"reason\": $(json_str "$reason"), \"fingerprint\": $(json_str "$fp")}"
    sep=$',\n  '
    table+="| ${image//|/\\|} | $([ "$run" = true ] && echo run || echo skip) | ${reason//|/\\|} | \`$fp\` |"$'\n'
  done <"$PLAN_DATA"
  if [ -n "$json" ]; then
    printf '[\n  %s\n]\n' "$json" >"$KVC_PLAN_DIR/plan.json"
  else
    printf '[]\n' >"$KVC_PLAN_DIR/plan.json"
  fi
  kvc_log "$runs of $count images run"
  if [ -n "${KVC_SUMMARY_FILE:-}" ]; then
    {
      printf '### kvc plan: %s of %s images run\n\n' "$runs" "$count"
      printf '| Image | Decision | Reason | Fingerprint |\n|---|---|---|---|\n'
      printf '%s\n' "$table"
    } >>"$KVC_SUMMARY_FILE"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
