#!/usr/bin/env bash
# Build backwatch's container image (`make image`): localhost/backwatch:dev from ./Dockerfile,
# with podman if it is installed, else docker.
#
# With registry access this is a plain build on python:3.12-slim. Where that base cannot be
# pulled (no registry reachable), the base is a Debian bookworm root file system made with
# debootstrap from the Debian mirror apt already uses and imported as
# localhost/backwatch-base:bookworm (made once, then reused; needs root and debootstrap).
#
# Environment:
#   IMAGE                  tag to build (default localhost/backwatch:dev)
#   BASE                   base image for every stage; skips the detection below
#   BACKWATCH_IMAGE_BASE   "debootstrap" to use the debootstrap base even if a registry answers
#   CONTAINER_ENGINE       podman or docker (default: podman if installed, else docker)
#   BUILD_CA               CA bundle handed to pip as the build secret "ca" (default: $PIP_CERT,
#                          else /etc/ssl/certs/ca-certificates.crt if it exists)
#   DEBIAN_MIRROR          mirror for debootstrap (default: the first Debian one in apt's sources)
#   BUILD_ISOLATION        podman's --isolation (default chroot: works where runc cannot run)
#   BUILD_LAYERS           podman's --layers (default true: a rebuild reuses unchanged steps)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/backwatch:dev}
DEFAULT_BASE=$(sed -n -E 's/^ARG BASE=(.+)$/\1/p' Dockerfile | head -n 1)
DEBOOTSTRAP_BASE=localhost/backwatch-base:bookworm
rootfs=""

say() { printf 'build-image: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then
    engine=podman
  elif command -v docker >/dev/null 2>&1; then
    engine=docker
  else
    die "neither podman nor docker is installed (apt-get install podman)"
  fi
fi
command -v "$engine" >/dev/null 2>&1 || die "CONTAINER_ENGINE=$engine is not installed"

image_exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n -E -e 's#^URIs:[[:space:]]*([^[:space:]]*/debian)/?[[:space:]]*$#\1#p' \
      -e 's#^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]*/debian)/?[[:space:]].*#\2#p' |
    head -n 1)
  echo "${found:-http://deb.debian.org/debian}"
}

make_debootstrap_base() {
  if image_exists "$DEBOOTSTRAP_BASE"; then
    say "reusing $DEBOOTSTRAP_BASE"
    return
  fi
  [ "$(id -u)" = 0 ] || die "making $DEBOOTSTRAP_BASE with debootstrap needs root"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
  local mirror started
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /tmp/backwatch-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  started=$SECONDS
  say "making $DEBOOTSTRAP_BASE from $mirror (debootstrap, about 2 minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || {
    tail -n 20 "$rootfs.log" >&2
    die "debootstrap failed (log: $rootfs.log)"
  }
  rm -f "$rootfs.log"
  # updates and security fixes too, for the packages the Dockerfile adds and for these
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $mirror-security bookworm-security main
EOF
  chroot "$rootfs" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get upgrade -y -qq >/dev/null
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | "$engine" import --change 'CMD ["/bin/bash"]' - "$DEBOOTSTRAP_BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "made $DEBOOTSTRAP_BASE in $((SECONDS - started)) s"
}

base=${BASE:-}
if [ -z "$base" ]; then
  if [ "${BACKWATCH_IMAGE_BASE:-}" = debootstrap ]; then
    make_debootstrap_base
    base=$DEBOOTSTRAP_BASE
  elif image_exists "$DEFAULT_BASE" || "$engine" pull "$DEFAULT_BASE" >/dev/null 2>&1; then
    base=$DEFAULT_BASE
  else
    say "cannot pull $DEFAULT_BASE: building on a Debian bookworm base made with debootstrap"
    make_debootstrap_base
    base=$DEBOOTSTRAP_BASE
  fi
fi

args=(build --tag "$IMAGE" --build-arg "BASE=$base")
if [ "$engine" = podman ]; then
  # docker format: OCI images have no HEALTHCHECK; chroot isolation: builds where runc
  # cannot start containers (no cgroups or rlimits to give)
  args+=(--format docker --isolation "${BUILD_ISOLATION:-chroot}" --jobs 2) # stages at once
  # false: keep no intermediate images (the tests' builds leave nothing behind)
  args+=(--layers="${BUILD_LAYERS:-true}")
else
  export DOCKER_BUILDKIT=1 # RUN --mount=type=secret
fi
ca=${BUILD_CA:-${PIP_CERT:-}}
if [ -z "$ca" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ca=/etc/ssl/certs/ca-certificates.crt
fi
if [ -n "$ca" ]; then
  [ -f "$ca" ] || die "BUILD_CA=$ca: no such file"
  args+=(--secret "id=ca,src=$ca")
fi

started=$SECONDS
say "$engine ${args[*]} ."
"$engine" "${args[@]}" .
say "built $IMAGE on $base in $((SECONDS - started)) s"
