# shellcheck shell=bash
# Fake external tools for the rehearsal, sourced by a wrapper per tool name
# (TOOL is set by the wrapper). Bash, not Python: a rehearsal makes hundreds
# of calls and an interpreter start per call would dominate its run time.
#
# Every call appends a JSON line to $REHEARSAL_WORLD/calls.jsonl: the tool,
# its argv, the job and run that made it, its exit code and the "facts" it
# established (downloaded, staged, loaded, tested, promoted, signed). State:
# $REHEARSAL_WORLD (shared: internet/, registry.txt "ref digest" lines) and
# $REHEARSAL_MACHINE (this job's machine: kind clusters, the applied images).
# Knob: a file $REHEARSAL_WORLD/knobs/<job>/<tool>_<first arg> holding N
# makes the next N such calls fail.
# `docker buildx bake` is the one call handed to fake_bake.py (it reads JSON).
set -u
W="$REHEARSAL_WORLD"
M="$REHEARSAL_MACHINE"
[ -d "$M" ] || mkdir -p "$M"
ARGS=("$@")
FACTS='{}'
J=""

# json STRING / json_list STRING...: set J to the JSON text (no subshell:
# a fork per value would dominate the cost of a call).
json() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  J="\"$s\""
}

json_list() {
  local a sep="" out="["
  for a in "$@"; do
    json "$a"
    out+="$sep$J"
    sep=","
  done
  J="$out]"
}

# fact KEY STRING: FACTS = {KEY: STRING}; facts_list KEY STRING...: a list.
fact() {
  json "$2"
  FACTS="{\"$1\":$J}"
}

facts_list() {
  local key=$1
  shift
  json_list "$@"
  FACTS="{\"$key\":$J}"
}

finish() {
  local rc=$1 line
  json "$TOOL"
  line="{\"tool\":$J"
  json_list "${ARGS[@]}"
  line+=",\"argv\":$J"
  json "${REHEARSAL_JOB:-}"
  line+=",\"job\":$J"
  json "${REHEARSAL_RUN:-}"
  line+=",\"run\":$J"
  json "$PWD"
  line+=",\"cwd\":$J,\"facts\":$FACTS,\"rc\":$rc}"
  printf '%s\n' "$line" >>"$W/calls.jsonl"
  # A booted fake qemu stays up (as a VM would) until the mode's teardown kills it.
  [ -z "${LINGER:-}" ] || exec sleep "$LINGER"
  exit "$rc"
}

die() {
  printf 'fake %s: %s\n' "$TOOL" "$2" >&2
  fact error "$2"
  finish "$1"
}

opt() { # opt FLAG: the value after FLAG (or in FLAG=value)
  local i
  for ((i = 0; i < ${#ARGS[@]}; i++)); do
    case "${ARGS[i]}" in
      "$1") printf '%s' "${ARGS[i + 1]:-}"; return 0 ;;
      "$1"=*) printf '%s' "${ARGS[i]#*=}"; return 0 ;;
    esac
  done
  return 1
}

knob() {
  local f="$W/knobs/${REHEARSAL_JOB:-}/${TOOL}_${ARGS[0]:-}" n
  [ -s "$f" ] || return 0
  n=$(<"$f")
  [ "$n" -gt 0 ] || return 0
  echo $((n - 1)) >"$f"
  FACTS='{"knob":true}'
  echo "fake $TOOL: failing as the knob asks" >&2
  finish 1
}

lookup() { # lookup FILE KEY: the value of the "KEY value" line
  [ -f "$1" ] && awk -v k="$2" '$1 == k { v = $2 } END { if (v != "") print v; else exit 1 }' "$1"
}

url_blob() {
  local sum
  sum=$(printf '%s' "$1" | sha256sum)
  printf '%s/internet/%s' "$W" "${sum%% *}"
}

# curl: a URL on the fake internet is a 200; any other URL is a 404, which
# fails the call under --fail (-f) as real curl does (exit 22) and otherwise
# is an answer: empty body, `-w '%{http_code}'` prints 404 (the plan stage
# reads the registry API this way: 404 = not published). -D writes the status line.
fake_curl() {
  local url="" a out blob status=200 fail=false
  for a in "${ARGS[@]}"; do
    case "$a" in
      *://*) url=$a ;;
      --fail | -[!-]*f*) fail=true ;; # --fail, or a short-option cluster with f
    esac
  done
  blob=$(url_blob "$url")
  if [ ! -f "$blob" ]; then
    "$fail" && die 22 "curl: (22) The requested URL returned error: 404 ($url)"
    status=404 blob=/dev/null
  fi
  if out=$(opt -D); then
    printf 'HTTP/1.1 %s\r\n\r\n' "$status" >"$out"
  fi
  if out=$(opt --output) || out=$(opt -o); then
    cat "$blob" >"$out"
  else
    cat "$blob"
  fi
  if out=$(opt -w); then
    printf '%s' "${out//%\{http_code\}/$status}"
  fi
  if [ "$status" = 200 ]; then fact downloaded "$url"; else fact answered "$status $url"; fi
}

fake_qemu_img() {
  case "${ARGS[0]}" in
    convert) cp "${ARGS[-2]}" "${ARGS[-1]}" ;;
    create) : >"${ARGS[-2]}" ;;
    info) printf '{\n    "virtual-size": 12884901888,\n    "format": "qcow2"\n}\n' ;;
  esac
}

fake_imagetools() {
  local source="${ARGS[-1]}" digest tags=() i
  digest=$(lookup "$W/registry.txt" "$source") || die 1 "ERROR: $source: not found"
  for ((i = 3; i < ${#ARGS[@]} - 1; i++)); do
    if [ "${ARGS[i]}" = --tag ] || [ "${ARGS[i]}" = -t ]; then
      tags+=("${ARGS[i + 1]}")
      printf '%s %s\n' "${ARGS[i + 1]}" "$digest" >>"$W/registry.txt"
    fi
  done
  json_list "${tags[@]}"
  FACTS="{\"promoted\":\"$digest\",\"tags\":$J"
  json "$source"
  FACTS+=",\"source\":$J}"
}

fake_docker() {
  case "${ARGS[0]} ${ARGS[1]:-} ${ARGS[2]:-}" in
    "buildx bake "*)
      FACTS=$("$REHEARSAL_PYTHON" -I -S "$REHEARSAL_FAKES/fake_bake.py" "${ARGS[@]:2}") || die 1 "bake failed"
      ;;
    "buildx imagetools create") fake_imagetools ;;
    "buildx inspect "* | "buildx create "* | "buildx version "*) ;;
    "login "*)
      [ -n "$(cat)" ] || die 1 "login: no password on stdin"
      fact login "${ARGS[-1]}"
      ;;
    *) die 97 "docker ${ARGS[*]:0:3} is not emulated" ;;
  esac
}

fake_kind() {
  local name dir archive address config
  local -a names
  name=$(opt --name) || name=kind
  dir="$M/clusters/$name"
  case "${ARGS[0]} ${ARGS[1]:-}" in
    "create cluster")
      mkdir -p "$dir" && : >"$dir/images"
      # The API server listens on 127.0.0.1 of the Docker host unless the config
      # says otherwise; kubectl (below) reaches it only from that host.
      address=127.0.0.1
      config=$(opt --config) && grep -q 'apiServerAddress: "0.0.0.0"' "$config" && address=0.0.0.0
      printf 'https://%s:6443' "$address" >"$M/api-server"
      ;;
    "load image-archive")
      [ -d "$dir" ] || die 1 "ERROR: no nodes found for cluster \"$name\""
      archive="${ARGS[2]}"
      [ -f "$archive" ] || die 1 "ERROR: $archive: no such file"
      tail -n +2 "$archive" | while read -r image; do
        printf '%s %s\n' "$image" "$(head -n1 "$archive")" >>"$dir/images"
      done
      mapfile -t names <"$archive"
      facts_list loaded "${names[@]}"
      ;;
    "delete cluster") rm -rf "$dir" ;;
  esac
}

resolve() { # the digest a node would run for $1, or fail (ErrImagePull)
  local f
  for f in "$M"/clusters/*/images; do
    lookup "$f" "$1" && return 0
  done
  [[ "$1" == *@sha256:* ]] && lookup "$W/registry.txt" "$1" >/dev/null && printf '%s\n' "${1#*@}"
}

boot() { # the VM boots only if every image of the applied manifest resolves
  local image digest
  local -a digests=()
  [ -s "$M/applied" ] || die 1 "error: no VMI applied"
  while read -r image; do
    digest=$(resolve "$image") || die 1 "error: timed out waiting for the condition (ErrImagePull $image)"
    digests+=("$digest")
  done <"$M/applied"
  facts_list tested "${digests[@]}"
}

# The Docker host kind's containers run on: DOCKER_HOST's (tcp://HOST:PORT), else this one.
docker_host() {
  local host="${DOCKER_HOST:-}"
  [[ "$host" == tcp://* ]] || { echo 127.0.0.1; return; }
  host="${host#tcp://}"
  echo "${host%%:*}"
}

fake_kubectl() {
  local file server host
  local -a images
  file=$(opt -f) || file=""
  if [ "${ARGS[0]}" = config ]; then
    case "${ARGS[1]}" in
      view) cat "$M/api-server" ;;
      set-cluster)
        server=$(opt --server) || die 97 "kubectl config set-cluster without --server"
        printf '%s' "$server" >"$M/api-server"
        fact api_server "$server"
        ;;
      *) die 97 "kubectl config ${ARGS[1]} is not emulated" ;;
    esac
    return 0
  fi
  if [ -f "$M/api-server" ]; then # a cluster exists: is its API server reachable?
    server=$(cat "$M/api-server")
    host="${server#https://}" host="${host%%:*}"
    case "$(docker_host):$host" in
      127.0.0.1:127.0.0.1 | 127.0.0.1:0.0.0.0 | localhost:*) ;;
      *:127.0.0.1 | *:0.0.0.0) die 1 "The connection to the server $server was refused" ;;
      *) [ "$host" = "$(docker_host)" ] || die 1 "dial tcp: lookup $host: no such host" ;;
    esac
  fi
  case "${ARGS[0]}" in
    create)
      [[ " ${ARGS[*]} " == *" --dry-run=client "* ]] || return 0
      awk '/^---/ { vm = 0; meta = 0 } /^kind: *VirtualMachine *$/ { vm = 1 }
        /^metadata:/ { meta = 1; next } meta && /^  name:/ { name = $2; meta = 0 }
        vm && name != "" && !done { printf "%s", name; done = 1 }' "$file"
      ;;
    apply)
      if [[ "$file" != *://* ]] && grep -q '^kind: *VirtualMachine *$' "$file"; then
        sed -n 's/^[[:space:]]*image:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$file" >"$M/applied"
        mapfile -t images <"$M/applied"
        facts_list applied "${images[@]}"
      fi
      ;;
    wait)
      [[ "${ARGS[1]}" == vmi/* ]] || return 0
      boot
      ;;
    logs) # the serial console (guest-console-log) shows the cloud-init marker
      [[ " ${ARGS[*]} " == *" guest-console-log "* ]] || return 0
      boot
      echo kvc-boot-ok
      ;;
  esac
}

fake_cosign() {
  if [ "${ARGS[0]}" = sign ]; then
    local oidc=false
    [ -z "${SIGSTORE_ID_TOKEN:-}" ] || oidc=true
    json "${ARGS[-1]}"
    FACTS="{\"signed\":$J,\"oidc\":$oidc}"
  elif [ "${ARGS[0]}" = verify ]; then
    json "${ARGS[*]:1}"
    FACTS="{\"verified\":$J}"
  fi
}

# The qemu test mode (arm64 without KVM). skopeo copy SRC oci:DEST writes a
# one-layer OCI layout whose disk/disk.qcow2 names the image's digest (the
# archive's first line, or the registry's digest for a docker:// reference).
fake_skopeo() {
  local src dest digest ref
  [ "${ARGS[0]}" = copy ] || return 0
  src="${ARGS[-2]}" dest="${ARGS[-1]#oci:}"
  case "$src" in
    oci-archive:*) digest=$(head -n1 "${src#oci-archive:}") || die 1 "no archive $src" ;;
    docker://*)
      ref="${src#docker://}"
      digest=$(lookup "$W/registry.txt" "$ref") || die 1 "manifest unknown: $ref"
      ;;
    *) die 97 "skopeo copy from $src is not emulated" ;;
  esac
  mkdir -p "$dest/blobs/sha256" "$M/layer/disk"
  printf 'containerDisk %s\n' "$digest" >"$M/layer/disk/disk.qcow2"
  tar -cf "$dest/blobs/sha256/layer" -C "$M/layer" disk || die 1 "tar failed"
  rm -rf "$M/layer"
  fact copied "$digest"
}

# qemu-system-*: the KVM probe (no -serial file:) fails as on a runner without
# KVM; a boot writes kvc-boot-ok to the console only when its disk came from
# a staged image, and leaves a flag beside the agent socket for fake socat.
fake_qemu_system() {
  local console="" disk="" qga="" a digest
  for a in "${ARGS[@]}"; do
    case "$a" in
      file:*) console="${a#file:}" ;;
      file=*format=qcow2*) disk="${a#file=}"; disk="${disk%%,*}" ;;
      socket,*path=*) qga="${a#*path=}"; qga="${qga%%,*}" ;;
    esac
  done
  [ -n "$console" ] || die 1 "no emulator here (the KVM probe fails fast)"
  digest=$(sed -n 's/^containerDisk //p' "$disk" 2>/dev/null)
  [ -n "$digest" ] || die 1 "the disk $disk is not a staged containerDisk"
  echo kvc-boot-ok >>"$console"
  [ -z "$qga" ] || : >"$qga.agent"
  facts_list tested "$digest"
  LINGER=60
}

fake_socat() { # guest-ping over the agent socket qemu "opened"
  local sock="${ARGS[-1]#UNIX-CONNECT:}"
  [ -f "$sock.agent" ] || die 1 "connect: No such file or directory"
  cat >/dev/null
  echo '{"return": {}}'
}

fake_genisoimage() {
  local out
  out=$(opt -output) || die 1 "no -output"
  : >"$out"
}

fake_circleci() {
  [ "${ARGS[*]:0:3}" = "run oidc get" ] || die 97 "circleci ${ARGS[*]} is not emulated"
  printf 'fake.oidc.token'
}

knob
case "$TOOL" in
  curl) fake_curl ;;
  qemu-img) fake_qemu_img ;;
  virt-resize) cp "${ARGS[-2]}" "${ARGS[-1]}" ;;
  docker) fake_docker ;;
  kind) fake_kind ;;
  kubectl) fake_kubectl ;;
  cosign) fake_cosign ;;
  circleci) fake_circleci ;;
  qemu-system-*) fake_qemu_system ;;
  skopeo) fake_skopeo ;;
  socat) fake_socat ;;
  genisoimage) fake_genisoimage ;;
  # The host's package lists are no part of the rehearsal (and cost over half a
  # second of CPU a call): every package has a candidate.
  apt-cache) echo '  Candidate: 1.0' ;;
  # build.sh's SELinux relabel check: the fake customization relabelled at build time.
  guestfish) echo false ;;
esac
finish 0
