#!/usr/bin/env bash
# Build the Hugging Face Space image with podman on this machine, run it, and
# request the page.  Too slow for every CI run (the first build compiles
# llama-cpp-python, ~10 min on 2 cores); run it before resolving container work.
#
# Usage: scripts/podman_check.sh [--build-only] [--head]
#   --build-only  stop after the image build
#   --head        build from the committed HEAD (git archive) instead of the working
#                 tree, so other people's uncommitted edits do not leak into the check
#
# Idempotent: tools, the containers.conf, the debootstrapped base image, the torch
# wheel and podman's layer cache are reused when present.  Needs root (root podman).
#
# Environment overrides:
#   STATE_DIR     cache dir for rootfs/conf/wheels   (default /var/tmp/webui-podman)
#   BASE_IMAGE    base image to build on              (default localhost/webui-base:bookworm,
#                 made with debootstrap; no registry is reachable here)
#   IMAGE         image tag to build                  (default localhost/webui-space:check)
#   HOST_PORT     host port mapped to 7860            (default 7861)
#   WAIT_SECONDS  how long to wait for HTTP 200       (default 300)
#   DEBIAN_MIRROR mirror for debootstrap              (default http://deb.debian.org/debian)
set -euo pipefail

BUILD_ONLY=0
FROM_HEAD=0
for arg in "$@"; do
  case "$arg" in
    --build-only) BUILD_ONLY=1 ;;
    --head) FROM_HEAD=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${STATE_DIR:-/var/tmp/webui-podman}"
BASE_IMAGE="${BASE_IMAGE:-localhost/webui-base:bookworm}"
IMAGE="${IMAGE:-localhost/webui-space:check}"
HOST_PORT="${HOST_PORT:-7861}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CONTAINER="webui-space-check-$$"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
T0=$(date +%s)

log()  { printf '[podman_check %5ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
step() { STEP_T0=$(date +%s); log "== $*"; }
done_step() { log "   done in $(( $(date +%s) - STEP_T0 ))s"; }
die()  { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (root podman is what works here)"
mkdir -p "$STATE_DIR"

# ------------------------------------------------------------------ 1. tools
step "tools: podman buildah runc debootstrap curl"
missing=()
for tool in podman buildah runc debootstrap curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing from apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y podman buildah runc debootstrap curl
else
  log "already installed"
fi
podman --version
done_step

# ------------------------------------------------------------- 2. podman conf
step "containers.conf (runtime runc, default ulimits)"
export CONTAINERS_CONF="$STATE_DIR/containers.conf"
cat > "$CONTAINERS_CONF.new" <<'EOF'
[containers]
default_ulimits = [
  "nofile=20000:20000",
  "nproc=32768:32768",
]

[engine]
runtime = "runc"
EOF
mv "$CONTAINERS_CONF.new" "$CONTAINERS_CONF"
log "CONTAINERS_CONF=$CONTAINERS_CONF"
podman info --format 'runtime={{.Host.OCIRuntime.Name}} storage={{.Store.GraphDriverName}} cgroup={{.Host.CgroupsVersion}}'
done_step

# ------------------------------------------------------------- 3. base image
step "base image $BASE_IMAGE"
if podman image exists "$BASE_IMAGE"; then
  log "exists, reusing (podman rmi $BASE_IMAGE to rebuild it)"
else
  case "$BASE_IMAGE" in
    localhost/*) ;;
    *) log "not local; trying to pull"; podman pull "$BASE_IMAGE" || die "cannot get $BASE_IMAGE" ;;
  esac
fi
if ! podman image exists "$BASE_IMAGE"; then
  ROOTFS="$STATE_DIR/rootfs-bookworm"
  if [ ! -f "$ROOTFS/.complete" ]; then
    log "debootstrap bookworm -> $ROOTFS"
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase \
      --include=python3,python3-pip,python3-venv,passwd,ca-certificates \
      bookworm "$ROOTFS" "$DEBIAN_MIRROR"
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    touch "$ROOTFS/.complete"
  else
    log "rootfs already bootstrapped"
  fi
  log "podman import"
  tar --numeric-owner --exclude=./.complete -C "$ROOTFS" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$BASE_IMAGE"
fi
podman run --rm "$BASE_IMAGE" python3 --version
done_step

# -------------------------------------------------------------- 4. torch wheel
# requirements.txt pins torch to the CPU build that lies on this machine's disk;
# inside the build PyPI would serve the multi-GB CUDA build and PyTorch's CPU
# index is unreachable, so hand this host's wheel to the build.
step "torch wheel for the build"
WHEELS="$STATE_DIR/wheels"
mkdir -p "$WHEELS"
torch_req="$(grep -E '^torch[[:space:]]*[=<>~!]' "$REPO_DIR/requirements.txt" | head -n1 || true)"
log "torch requirement: ${torch_req:-<none>}"
if [ -n "$torch_req" ]; then
  torch_ver="${torch_req#*==}"
  if ls "$WHEELS"/torch-"${torch_ver}"[-+]*.whl >/dev/null 2>&1; then
    log "already in $WHEELS"
  else
    rm -f "$WHEELS"/torch-*.whl
    pip download --no-deps --only-binary=:all: -d "$WHEELS" "$torch_req"
  fi
  ls -l "$WHEELS"
fi
done_step

# --------------------------------------------------------------------- 5. build
CONTEXT="$REPO_DIR"
if [ "$FROM_HEAD" = 1 ]; then
  step "build context: git archive HEAD"
  CONTEXT="$STATE_DIR/context-head"
  rm -rf "$CONTEXT"
  mkdir -p "$CONTEXT"
  git -C "$REPO_DIR" archive HEAD | tar -x -C "$CONTEXT"
  log "HEAD = $(git -C "$REPO_DIR" log -1 --format='%h %s')"
  [ -f "$CONTEXT/Dockerfile" ] || die "HEAD has no Dockerfile"
  done_step
else
  log "build context: working tree $REPO_DIR (HEAD $(git -C "$REPO_DIR" log -1 --format=%h 2>/dev/null || echo '?'), uncommitted edits included)"
fi
step "podman build $IMAGE (first build compiles llama-cpp-python: ~10 min)"
podman build \
  --layers \
  --format docker \
  -v "$CA_BUNDLE:$CA_BUNDLE:ro" \
  -v "$WHEELS:/wheels:ro" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" \
  --build-arg TORCH_PIP_ARGS="--no-index --find-links /wheels" \
  -t "$IMAGE" \
  -f "$CONTEXT/Dockerfile" \
  "$CONTEXT"
podman image inspect "$IMAGE" --format 'image {{.Id}} size={{.Size}} user={{.Config.User}} cmd={{.Config.Cmd}}'
podman image ls "$IMAGE"
done_step

if [ "$BUILD_ONLY" = 1 ]; then
  log "--build-only: stopping here. total $(( $(date +%s) - T0 ))s"
  exit 0
fi

# ----------------------------------------------------------------------- 6. run
cleanup() {
  if podman container exists "$CONTAINER" 2>/dev/null; then
    log "cleanup: stopping and removing $CONTAINER"
    podman stop -t 10 "$CONTAINER" >/dev/null || true
    podman rm -f "$CONTAINER" >/dev/null || true
  fi
}
trap cleanup EXIT

step "run $IMAGE as $CONTAINER on 127.0.0.1:$HOST_PORT"
podman run -d --name "$CONTAINER" \
  -p "127.0.0.1:$HOST_PORT:7860" \
  -e SPACE_ID=local/check \
  "$IMAGE"
URL="http://127.0.0.1:$HOST_PORT/"
status=000
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if [ "$(podman inspect -f '{{.State.Running}}' "$CONTAINER")" != true ]; then
    podman logs "$CONTAINER" 2>&1 | tail -n 50
    die "container exited (status $(podman inspect -f '{{.State.ExitCode}}' "$CONTAINER"))"
  fi
  status="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$URL" || true)"
  [ "$status" = 200 ] && break
  sleep 2
done
log "container logs (tail):"
podman logs "$CONTAINER" 2>&1 | tail -n 20
log "HTTP status: $status ($URL)"
[ "$status" = 200 ] || die "no HTTP 200 within ${WAIT_SECONDS}s"
# Gradio 6 renders no <title> server-side: the browser sets it from the embedded
# window.gradio_config["title"]; read that (or a <title> tag, if there is one).
title="$(curl -s -m 20 "$URL" | python3 -c '
import json, re, sys
html = sys.stdin.read()
m = re.search(r"<title[^>]*>([^<]*)</title>", html, re.I)
if m and m.group(1).strip():
    print(m.group(1).strip())
else:
    i = html.find("window.gradio_config")
    if i >= 0:
        cfg, _ = json.JSONDecoder().raw_decode(html, html.index("{", i))
        print(cfg.get("title") or "")
')"
log "page title: ${title:-<none>}"
[ -n "$title" ] || die "page has no <title>"
done_step

# ------------------------------------------------------------------ 7. checks
step "checks: uid 1000, writable data dir"
proc_uid="$(podman exec "$CONTAINER" sh -c 'awk "/^Uid:/{print \$2}" /proc/1/status')"
log "process uid (pid 1 in container): $proc_uid"
podman top "$CONTAINER" user huser pid args || true
[ "$proc_uid" = 1000 ] || die "server does not run as uid 1000"
podman exec "$CONTAINER" sh -c 'id; echo "WEBUI_DATA_DIR=$WEBUI_DATA_DIR"'
podman exec "$CONTAINER" sh -c \
  'f="$WEBUI_DATA_DIR/.podman_check_$$" && echo ok > "$f" && rm "$f" && echo "data dir writable: $WEBUI_DATA_DIR" && ls -la "$WEBUI_DATA_DIR"' \
  || die "data dir not writable"
done_step

log "OK: HTTP $status, title '${title}', uid $proc_uid. total $(( $(date +%s) - T0 ))s"
