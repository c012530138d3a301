#!/usr/bin/env bash
# Runs every running container's health check every TOEFL_HEALTH_INTERVAL seconds (default 2), forever: podman
# schedules health checks with systemd timers, and without systemd nothing runs them, so compose's
# `condition: service_healthy` would wait for ever. Started and stopped by deploy/podman/env.sh.
set -uo pipefail
interval="${TOEFL_HEALTH_INTERVAL:-2}"
while true; do
    for id in $(podman ps --quiet --filter health=starting 2>/dev/null) \
        $(podman ps --quiet --filter health=healthy 2>/dev/null) \
        $(podman ps --quiet --filter health=unhealthy 2>/dev/null); do
        podman healthcheck run "$id" >/dev/null 2>&1 &
    done
    wait
    sleep "$interval"
done
