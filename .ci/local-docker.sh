#!/usr/bin/env bash
# A copy of ../shared/container/local-docker.sh (the workplace's script), for a CI clone that
# has no ../shared beside it: .ci/run prefers the shared one when it is there.
# A Docker engine and a `debian:12-slim` base image on a machine that reaches only the
# package registries (no image registry). Used by the project's image tests and CI.
#
#   source ../shared/container/local-docker.sh      # exports DOCKER_HOST; starts dockerd if needed
#   local_docker_stop                               # stops the dockerd this script started
#
# What it does, each step only when needed:
#   1. installs Debian's docker.io, docker-compose (v1, reads compose.yaml), mmdebstrap
#   2. starts dockerd on its own socket ($LOCAL_DOCKER_DIR/docker.sock), no iptables rules
#   3. builds `debian:12-slim` from Debian's own packages (mmdebstrap, minbase, docs and
#      locales left out as the official slim image does), adds this machine's extra CA
#      certificates and pip configuration so that `apt-get` and `pip install` inside
#      `docker build --network host` work here exactly as on a normal network
#
# Networking rule for tests: build with `--network host`; run containers with
# `--network none`, `--network container:<id>` (share one namespace, talk over 127.0.0.1),
# or an `internal: true` compose network between the project's own containers. Never
# send traffic to any address outside this machine.
# (no `set` here: this file is sourced and must not change the caller's shell options)
LOCAL_DOCKER_DIR=${LOCAL_DOCKER_DIR:-/var/lib/relaykit-docker}
export DOCKER_HOST=unix://$LOCAL_DOCKER_DIR/docker.sock

_ld_say() { printf 'local-docker: %s\n' "$*" >&2; }

_ld_install() {
  local missing="" p
  for p in docker.io docker-compose mmdebstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  _ld_say "installing$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

_ld_start() {
  docker version >/dev/null 2>&1 && return 0
  mkdir -p "$LOCAL_DOCKER_DIR"
  _ld_say "starting dockerd ($LOCAL_DOCKER_DIR)"
  /usr/sbin/dockerd --data-root "$LOCAL_DOCKER_DIR/root" --exec-root "$LOCAL_DOCKER_DIR/exec" \
    -H "$DOCKER_HOST" --pidfile "$LOCAL_DOCKER_DIR/dockerd.pid" --iptables=false \
    >"$LOCAL_DOCKER_DIR/dockerd.log" 2>&1 &
  local i
  for i in $(seq 1 100); do
    docker version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  _ld_say "dockerd did not start; last lines of $LOCAL_DOCKER_DIR/dockerd.log:"
  tail -n 20 "$LOCAL_DOCKER_DIR/dockerd.log" >&2
  return 1
}

_ld_base() {
  docker image inspect debian:12-slim >/dev/null 2>&1 && return 0
  local tmp; tmp=$(mktemp -d)
  _ld_say "building debian:12-slim from Debian packages (mmdebstrap, about 20 s)"
  mmdebstrap --variant=minbase --mode=root \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$tmp/rootfs.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" >"$tmp/mmdebstrap.log" 2>&1 \
    || { tail -n 20 "$tmp/mmdebstrap.log" >&2; rm -rf "$tmp"; return 1; }
  docker import "$tmp/rootfs.tar" relaykit-local/debian-rootfs:12 >/dev/null || { rm -rf "$tmp"; return 1; }
  # This machine's extra CAs and pip settings (a network that inspects TLS): layered in
  # the base image, so the project's Dockerfile stays what it is on a normal network.
  mkdir -p "$tmp/ctx"
  cp /usr/local/share/ca-certificates/*.crt "$tmp/ctx/" 2>/dev/null || true
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$tmp/ctx/pip.conf"
  {
    echo "FROM relaykit-local/debian-rootfs:12"
    ls "$tmp/ctx"/*.crt >/dev/null 2>&1 && echo "COPY *.crt /usr/local/share/ca-certificates/"
    echo "COPY pip.conf /etc/pip.conf"
    echo 'CMD ["bash"]'
  } >"$tmp/ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t debian:12-slim "$tmp/ctx" >/dev/null || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  _ld_say "debian:12-slim ready"
}

local_docker_stop() {
  local pid
  pid=$(cat "$LOCAL_DOCKER_DIR/dockerd.pid" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && _ld_say "stopped dockerd $pid"
}

_ld_install && _ld_start && _ld_base
