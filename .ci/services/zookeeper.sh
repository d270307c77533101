#!/usr/bin/env bash
# ZooKeeper for the cluster tests: Debian's `zookeeper` package (the server jar and its
# classpath; Java is already on the machine). Idempotent: does nothing when the jar is there.
# The tests start their own servers (loopback, temp data dir, free port); nothing runs here.
set -euo pipefail
JAR=/usr/share/java/zookeeper.jar
if [[ -f "$JAR" ]]; then
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# An install from the cached package lists first; refresh them only if that fails.
$SUDO apt-get install -y --no-install-recommends zookeeper >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends zookeeper >/dev/null
}
[[ -f "$JAR" ]] || { echo "zookeeper.sh: $JAR missing after install" >&2; exit 1; }
command -v java >/dev/null || { echo "zookeeper.sh: java is not installed" >&2; exit 1; }
echo "zookeeper.sh: installed Debian's zookeeper package"
