#!/usr/bin/env bash
# The Docker executor's tests (test/plugins/executor-docker*) run containers through podman's
# Docker-compatible API, with runc (crun fails here), catatonit (for --init) and busybox-static
# for the test image's /bin/sh; kiln's own image (test/cli/container.test.ts) is built on a
# Debian base made with debootstrap. Installs only what is missing; quick and quiet when all are there.
set -euo pipefail
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /bin/busybox ] || missing+=(busybox-static)
# the init process for containers started with --init (the executor's default)
command -v catatonit >/dev/null 2>&1 || missing+=(catatonit)
# the local Debian base of kiln's image (no image registry is reachable in CI)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "podman: missing ${missing[*]} and apt-get is not available" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${missing[@]}" >/dev/null
command -v podman >/dev/null 2>&1 || { echo "podman: installed, but podman is still missing" >&2; exit 1; }
echo "podman: $(podman --version)"
