#!/usr/bin/env bash
# Make a Docker engine, a local registry and a local Python base image available.
#
# Idempotent: installs docker.io, mmdebstrap and docker-registry when missing (apt, as
# root), starts dockerd when `docker info` fails, starts a registry on 127.0.0.1:5000 when
# nothing answers there, and builds the base image once (reused when present).
#
# Usage: bash scripts/docker_up.sh
# Environment:
#   CELLPIPE_TEST_BASE_IMAGE  name of the local base image (default cellpipe-base:bookworm)
#   CELLPIPE_REGISTRY         registry address (default 127.0.0.1:5000)
set -euo pipefail

BASE_IMAGE=${CELLPIPE_TEST_BASE_IMAGE:-cellpipe-base:bookworm}
REGISTRY=${CELLPIPE_REGISTRY:-127.0.0.1:5000}
STATE=${CELLPIPE_DOCKER_STATE:-/var/lib/cellpipe-ci}
mkdir -p "$STATE"

say() { echo "== docker_up: $*"; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need_pkgs+=(mmdebstrap)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${need_pkgs[*]} and cannot install them (need root and apt-get)" >&2
    exit 1
  fi
  say "installing ${need_pkgs[*]} (apt)"
  apt-get update -qq
  # The registry package's post-install starts a service that wants htpasswd; we start
  # our own registry below, so policy-rc.d keeps the package from starting anything.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_pkgs[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

if ! docker info >/dev/null 2>&1; then
  # No bridge network and no iptables on these machines. overlay2 when this kernel can
  # mount overlayfs here (a step layer then builds in a fraction of a second); else vfs,
  # which works on any filesystem but copies whole layers.
  driver=vfs
  probe=$(mktemp -d)
  mkdir -p "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    driver=overlay2
  fi
  rm -rf "$probe"
  say "starting dockerd (storage driver $driver)"
  nohup dockerd --storage-driver="$driver" --iptables=false --bridge=none \
    >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "error: dockerd did not start; its log:" >&2
    tail -n 30 "$STATE/dockerd.log" >&2
    exit 1
  fi
fi

if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
  say "starting a registry on $REGISTRY"
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  for _ in $(seq 1 30); do
    curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
    echo "error: the registry did not start; its log:" >&2
    tail -n 30 "$STATE/registry.log" >&2
    exit 1
  fi
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  # No public image registry is reachable, so build a Debian + python3 base image from
  # the machine's own apt mirror.
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  if [ -z "$mirror" ]; then
    echo "error: cannot find the Debian mirror in the apt sources" >&2
    exit 1
  fi
  say "building base image $BASE_IMAGE from the apt mirror (about 30 s)"
  mmdebstrap --quiet --variant=apt \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=python3,python3-venv,python3-pip \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm - "$mirror" \
    | docker import --change 'WORKDIR /' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
fi
say "ready: daemon up, registry $REGISTRY, base image $BASE_IMAGE"
