#!/usr/bin/env bash
# Redis for the state, Redis Streams and Trident exactly-once tests: Debian's
# `redis-server` package. Idempotent: does nothing when redis-server is there.
# The tests start their own servers (loopback, free port, temp dir); nothing runs here,
# and the package's own service is not started (no systemd in CI).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# An install from the cached package lists first; refresh them only if that fails.
$SUDO apt-get install -y --no-install-recommends redis-server >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends redis-server >/dev/null
}
command -v redis-server >/dev/null || { echo "redis.sh: redis-server missing after install" >&2; exit 1; }
echo "redis.sh: installed Debian's redis-server package"
