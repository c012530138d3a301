#!/usr/bin/env bash
# Podman set up to run this project's compose stack where there is no Docker engine (Debian's podman, as root).
#
#   eval "$(deploy/podman/env.sh)"          # writes containers.conf, starts the Docker-API socket, prints exports
#   deploy/podman/env.sh --stop             # stops the API service and the health checks it started
#
# Prints CONTAINERS_CONF (runc and cgroupfs: crun fails on hybrid cgroup hosts; ulimits no higher than this
# shell's hard limits) and DOCKER_HOST (`podman system service` on a unix socket, which Debian's docker-compose
# talks to), and runs the containers' health checks (deploy/podman/healthchecks.sh: podman leaves them to
# systemd timers, and there is no systemd here). Everything lives in TOEFL_PODMAN_STATE (default /run/toefl-podman).
set -euo pipefail

state="${TOEFL_PODMAN_STATE:-/run/toefl-podman}"
conf="$state/containers.conf"
sock="$state/podman.sock"
pidfile="$state/service.pid"
healthpid="$state/healthchecks.pid"
mkdir -p "$state"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "${1:-}" = "--stop" ]; then
    # The health-check loop was started by setsid: its process group is its own, its checks included. The API
    # service alone (never its group: containers it started must outlive it, as under a real engine).
    for target in "$healthpid:-" "$pidfile:"; do
        file="${target%:*}"
        if running "$file"; then
            pid="$(cat "$file")"
            kill -- "${target##*:}$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$file"
    done
    rm -f "$sock"
    exit 0
fi

for tool in podman runc; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install podman runc iptables" >&2; exit 1; }
done

nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=1048576
# Podman itself runs conmon and runc with at most 32768 processes (rootful default): a higher nproc fails.
[ "$nproc" -gt 32768 ] && nproc=32768
# Rewritten each time, so a new hard limit is picked up; identical content leaves running containers alone.
cat > "$conf.new" <<EOF
# Written by deploy/podman/env.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
# No systemd here: podman cannot schedule health checks by itself (deploy/podman/healthchecks.sh runs them).
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
mv "$conf.new" "$conf"
export CONTAINERS_CONF="$conf"

if ! { running "$pidfile" && [ -S "$sock" ]; }; then
    rm -f "$sock"
    # --time=0: the service stays until --stop; setsid keeps it out of the caller's process group.
    setsid podman system service --time=0 "unix://$sock" >"$state/service.log" 2>&1 </dev/null &
    echo $! > "$pidfile"
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { echo "podman system service did not start; see $state/service.log" >&2; exit 1; }
fi

if ! running "$healthpid"; then
    setsid "$(dirname "$0")/healthchecks.sh" >"$state/healthchecks.log" 2>&1 </dev/null &
    echo $! > "$healthpid"
fi

echo "export CONTAINERS_CONF=$conf"
echo "export DOCKER_HOST=unix://$sock"
