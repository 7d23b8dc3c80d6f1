#!/usr/bin/env bash
# The container, built and run (`make test-deploy`; docs/deploy.md): builds the CPU image with
# docker compose, starts it with a small demo, waits for /readyz and a head's points, checks the
# user, the health check, torch and a graceful stop, then removes what it made.
#
# Needs a Docker engine; as root it installs Debian's (docker.io, docker-compose) and starts
# `dockerd --storage-driver=vfs` itself, stopping it at the end. With no registry reachable,
# the base image is a stand-in: Debian bookworm's python3 (debootstrap), with this host's CA
# bundle and pip settings, tagged with the Dockerfile's base name -- the recipe docs/deploy.md
# gives for building behind a proxy. Settings (environment):
#   QKATLAS_DEPLOY_BASE=auto|standin|pull   how to get the base image (auto: present, pull, stand-in)
#   QKATLAS_DEPLOY_MIRROR                   Debian mirror for debootstrap (http://deb.debian.org/debian)
#   QKATLAS_DEPLOY_DOCKERD_ARGS             flags for a dockerd it starts (--storage-driver=vfs)
#   QKATLAS_DEPLOY_DEMO_MODELS              the demo's models (minilm; from ../shared/models)
#   QKATLAS_DEPLOY_KEEP_IMAGES=1            keep the images it made (the next run builds from cache)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=$ROOT/.cache/deploy
PROJECT=qkatlas-deploy-test
SERVICE=qkatlas-cpu
BASE_MODE=${QKATLAS_DEPLOY_BASE:-auto}
MIRROR=${QKATLAS_DEPLOY_MIRROR:-http://deb.debian.org/debian}
DOCKERD_ARGS=${QKATLAS_DEPLOY_DOCKERD_ARGS:---storage-driver=vfs}
DEMO_MODELS=${QKATLAS_DEPLOY_DEMO_MODELS:-minilm}
KEEP_IMAGES=${QKATLAS_DEPLOY_KEEP_IMAGES:-0}
TOKEN=deploy-test-$RANDOM$RANDOM
WAIT_S=900
mkdir -p "$CACHE"

T0=$SECONDS
STEP_T=$SECONDS
TIMES=()
step() {  # step NAME: closes the previous step's timer
  if [ -n "${STEP_NAME:-}" ]; then TIMES+=("$(printf '%5ds  %s' $((SECONDS - STEP_T)) "$STEP_NAME")"); fi
  STEP_NAME=$1 STEP_T=$SECONDS
  echo "== $1"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || fail "$1 needs root (or start a Docker engine and rerun)"; }
apt_install() {
  need_root "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

DOCKERD_PID=
COMPOSE_UP=
CREATED_WHEELS=
MADE_IMAGES=()  # what teardown removes: the CPU image, its builder stages, a stand-in or pulled base
remove_images() {
  local builders
  builders=$(docker images -q -f label=org.qkatlas.builder=cpu)
  # Children before parents: the image and its builder stages, then the base they were built on.
  # shellcheck disable=SC2086  # one id a word
  docker rmi "${MADE_IMAGES[0]}" $builders >/dev/null 2>&1
  [ ${#MADE_IMAGES[@]} -lt 2 ] || docker rmi "${MADE_IMAGES[@]:1}" >/dev/null 2>&1
  echo "removed ${#MADE_IMAGES[@]} image(s) and $(wc -w <<<"$builders") builder stage(s); left: $(docker images -aq | wc -l) image(s)"
}
cleanup() {
  local rc=$?
  set +e
  step "teardown"
  if [ -n "$COMPOSE_UP" ]; then
    [ $rc = 0 ] || { echo "== container log (failure)"; compose logs --no-color --tail=80 "$SERVICE"; }
    echo "== compose down -v"
    compose down -v --remove-orphans
  fi
  if [ ${#MADE_IMAGES[@]} -gt 0 ]; then
    if [ "$KEEP_IMAGES" = 1 ]; then echo "== kept the images (QKATLAS_DEPLOY_KEEP_IMAGES=1): ${MADE_IMAGES[*]}"
    else echo "== removing the images this test made"; remove_images; fi
  fi
  [ -z "$CREATED_WHEELS" ] || rm -rf "$ROOT/wheels"
  if [ -n "$DOCKERD_PID" ]; then
    echo "== stopping the dockerd this test started (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 240); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    ! kill -0 "$DOCKERD_PID" 2>/dev/null || echo "WARNING: dockerd (pid $DOCKERD_PID) still runs after 2 minutes"
  fi
  step "done"
  echo "== timings"
  printf '%s\n' "${TIMES[@]}"
  printf '%5ds  total\n' $((SECONDS - T0))
  [ $rc = 0 ] && echo "PASS: the CPU image built, served an atlas and stopped cleanly" || echo "FAIL (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "docker engine"
if ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then apt_install docker.io; fi
if ! docker info >/dev/null 2>&1; then
  need_root "starting dockerd"
  # shellcheck disable=SC2086  # the flags are words
  dockerd $DOCKERD_ARGS >"$CACHE/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$CACHE/dockerd.log"; fail "dockerd did not start"; }
  echo "started dockerd $DOCKERD_ARGS (pid $DOCKERD_PID, log $CACHE/dockerd.log)"
fi
docker version --format 'engine {{.Server.Version}}, storage driver '"$(docker info --format '{{.Driver}}')"

if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
else
  command -v docker-compose >/dev/null || apt_install docker-compose
  COMPOSE=(docker-compose)
fi
compose() { "${COMPOSE[@]}" -p "$PROJECT" --profile cpu "$@"; }
# docker-compose 1.x gives up on a daemon call after 60 s; removing a container copied whole
# (vfs) on a busy machine takes longer.
export COMPOSE_HTTP_TIMEOUT=${COMPOSE_HTTP_TIMEOUT:-600}
echo "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || "${COMPOSE[@]}" version | head -1))"

step "compose files are valid"
for profile in "" cpu build; do
  "${COMPOSE[@]}" ${profile:+--profile "$profile"} config -q
done
echo "ok: config (default, --profile cpu, --profile build)"

step "base image"
BASE=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
STANDIN_RAW=qkatlas-standin/debian-python:bookworm
is_standin() { [ -n "$(docker image inspect -f '{{index .Config.Labels "org.qkatlas.standin"}}' "$BASE" 2>/dev/null)" ]; }
have_base() { docker image inspect "$BASE" >/dev/null 2>&1; }
make_standin() {
  local rootfs=$CACHE/standin-rootfs
  if ! docker image inspect "$STANDIN_RAW" >/dev/null 2>&1; then
    if [ ! -f "$rootfs/.complete" ]; then
      command -v debootstrap >/dev/null || apt_install debootstrap
      need_root debootstrap
      rm -rf "$rootfs"
      echo "debootstrap bookworm (minbase + python3) from $MIRROR"
      debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; fail debootstrap; }
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      touch "$rootfs/.complete"
    fi
    tar -C "$rootfs" --exclude=./.complete -c . |
      docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$STANDIN_RAW" >/dev/null
  fi
  # The recipe for a host behind a proxy with its own CA (docs/deploy.md): the base image plus
  # the host's CA bundle and pip.conf.
  python3 tests/deploy/host.py base-context "$CACHE/standin-context"
  docker build -q -t "$BASE" -f - "$CACHE/standin-context" >/dev/null <<EOF
FROM $STANDIN_RAW
LABEL org.qkatlas.standin="Debian bookworm python3 with this host's CA bundle and pip.conf (tests/deploy/run.sh)"
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
EOF
  MADE_IMAGES+=("$BASE" "$STANDIN_RAW")
  echo "stand-in $BASE: $STANDIN_RAW + this host's CA bundle and pip.conf:"
  sed 's/^/  /' "$CACHE/standin-context/pip.conf"
}
case $BASE_MODE in
  standin) make_standin ;;
  pull) docker pull -q "$BASE" && MADE_IMAGES+=("$BASE") ;;
  auto)
    if have_base && ! is_standin; then echo "using $BASE as present"
    elif ! is_standin && timeout 120 docker pull -q "$BASE" >/dev/null 2>&1; then echo "pulled $BASE"; MADE_IMAGES+=("$BASE")
    else make_standin; fi ;;
  *) fail "QKATLAS_DEPLOY_BASE=$BASE_MODE: use auto, standin or pull" ;;
esac
PYTAG=$(docker run --rm "$BASE" python3 -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
echo "$BASE: python $PYTAG"

step "build context: a local CPU torch"
# PyPI's Linux torch is the CUDA build (GBs); PyTorch's CPU index may be out of reach, as it is here.
[ -d wheels ] || CREATED_WHEELS=1
SPEC=$(python3 tests/deploy/host.py cpu-wheels "$ROOT/wheels" "$PYTAG" "$CACHE/wheels")
if [ -n "$SPEC" ]; then
  QKATLAS_TORCH_INDEX=$(python3 tests/deploy/host.py index)
  export QKATLAS_TORCH_SPEC=$SPEC QKATLAS_TORCH_INDEX
  echo "wheels/: $(cd wheels && echo *) -> TORCH_SPEC='$SPEC', their dependencies from $QKATLAS_TORCH_INDEX"
  case $SPEC in *+cpustandin*) echo "NOTE: torchvision is a stand-in: PyPI's CUDA build without its compiled ops (tests/deploy/host.py)" ;; esac
else
  [ -z "$CREATED_WHEELS" ] || rmdir wheels 2>/dev/null || true
  echo "no local CPU torch: the build fetches it from ${QKATLAS_TORCH_INDEX:-download.pytorch.org/whl/cpu}"
fi
export QKATLAS_BASE_IMAGE=$BASE

step "build the CPU image (compose build $SERVICE)"
OLD_IMAGE=$(docker image inspect -f '{{.Id}}' qkatlas:cpu 2>/dev/null || true)
MADE_IMAGES=(qkatlas:cpu "${MADE_IMAGES[@]}")  # first: remove_images takes it before its base
compose build "$SERVICE"
docker image inspect -f 'qkatlas:cpu {{.Id}}, {{.Size}} bytes' qkatlas:cpu
# What earlier builds left (gigabytes a layer with vfs): the image this one replaced, and the
# builder stages but the newest (this build's, the next build's cache).
if [ -n "$OLD_IMAGE" ] && [ "$OLD_IMAGE" != "$(docker image inspect -f '{{.Id}}' qkatlas:cpu)" ]; then
  docker rmi "$OLD_IMAGE" >/dev/null 2>&1 && echo "removed the previous qkatlas:cpu ($OLD_IMAGE)"
fi
STALE=$(docker images -q -f dangling=true -f label=org.qkatlas.builder=cpu | tail -n +2)
if [ -n "$STALE" ]; then
  # shellcheck disable=SC2086  # one id a word
  docker rmi $STALE >/dev/null 2>&1 && echo "removed $(wc -w <<<"$STALE") stale builder stage(s)"
fi

step "compose up"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
export QKATLAS_PUBLISH=127.0.0.1:$PORT QKATLAS_DEMO_MODELS=$DEMO_MODELS QKATLAS_DEMO_METHODS=pca QKATLAS_TOKEN=$TOKEN
COMPOSE_UP=1
compose up -d --no-build "$SERVICE"
CID=$(compose ps -q "$SERVICE")
echo "container $CID on $BASE_URL, demo: $DEMO_MODELS, pca"

watch() {  # watch PROBE ARGS...: the probe, stopped early if the container exits or restarts or
           # its background build fails
  python3 tests/deploy/probe.py "$@" &
  local probe=$!
  while kill -0 "$probe" 2>/dev/null; do
    if [ "$(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$CID")" != "true 0" ]; then
      kill "$probe"
      fail "the container exited or restarted: $(docker inspect -f '{{.State.Status}}, exit code {{.State.ExitCode}}, {{.RestartCount}} restarts' "$CID")"
    fi
    if grep -q -e '^Traceback' -e '^\[demo\] skipped' <<<"$(docker logs "$CID" 2>&1)"; then
      kill "$probe"
      fail "the server or its build failed: $(docker logs "$CID" 2>&1 | grep -v ' "GET /' | tail -5)"
    fi
    sleep 3
  done
  wait "$probe"
}

step "wait for /readyz"
watch ready "$BASE_URL" "$WAIT_S"

step "an atlas and one head's points"
watch points "$BASE_URL" "$WAIT_S"

step "what guards it on a LAN (token, Host allow-list, body limit, headers)"
python3 tests/deploy/probe.py protected "$BASE_URL" "$TOKEN"

step "inside the container"
USER_ID=$(compose exec -T "$SERVICE" id -u | tr -d '\r')
[ "$USER_ID" != 0 ] || fail "the server runs as root"
echo "ok: runs as uid $USER_ID ($(compose exec -T "$SERVICE" id -un | tr -d '\r'))"
compose exec -T "$SERVICE" python -c '
import torch, torchvision
assert not torch.cuda.is_available() and "+cpu" in torch.__version__, torch.__version__
print(f"ok: torch {torch.__version__}, torchvision {torchvision.__version__}, no CUDA")'
NVIDIA=$(compose exec -T "$SERVICE" pip list 2>/dev/null | grep -ci '^nvidia-' || true)
[ "$NVIDIA" = 0 ] || fail "the CPU image has $NVIDIA nvidia-* packages"
echo "ok: no nvidia-* packages"

step "one-shot build beside the server (compose run)"
compose run --rm -T "$SERVICE" qkatlas build --model tiny-gpt2 --methods pca --dims 2
watch atlases "$BASE_URL" 2 60

step "health check"
for _ in $(seq 60); do
  HEALTH=$(docker inspect -f '{{.State.Health.Status}}' "$CID")
  [ "$HEALTH" = starting ] || break
  sleep 2
done
[ "$HEALTH" = healthy ] || fail "health is $HEALTH: $(docker inspect -f '{{json .State.Health}}' "$CID")"
echo "ok: healthy"

step "graceful stop (SIGTERM)"
GRACE=$(sed -n 's/^ *stop_grace_period: *\([0-9]*\)s$/\1/p' docker-compose.yml | head -1)
STOP_AT=$(date +%s.%N)
compose stop "$SERVICE"
read -r CODE FINISHED <<<"$(docker inspect -f '{{.State.ExitCode}} {{.State.FinishedAt}}' "$CID")"
STOP_S=$(python3 -c "print(round($(date -d "$FINISHED" +%s.%N) - $STOP_AT, 1))")
# 130: uvicorn shuts down, then re-raises the SIGTERM it caught, which `qkatlas demo` turns into
# an interrupt to stop its builder (as after Ctrl+C); 137 would be the SIGKILL that ends the
# grace period.
case $CODE in 0|130) ;; *) fail "exit code $CODE after SIGTERM (137: killed when the grace period ran out)" ;; esac
grep -q "Application shutdown complete" <<<"$(compose logs --no-color --tail=20 "$SERVICE")" ||
  fail "no 'Application shutdown complete' in the log: uvicorn did not shut down"
python3 -c "import sys; sys.exit(not $STOP_S < $GRACE)" || fail "the server took $STOP_S s to stop, the grace period is $GRACE s"
echo "ok: uvicorn shut down and the container exited $STOP_S s after SIGTERM (grace $GRACE s), exit code $CODE"
