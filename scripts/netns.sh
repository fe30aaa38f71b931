#!/usr/bin/env bash
# Run a command in a fresh network namespace that has only loopback: lo up with multicast on and
# 224.0.0.0/4 routed to lo. Every test packet (multicast included) then stays on this machine.
# Needs root (or unprivileged user namespaces); without either the command runs as it is.
set -euo pipefail
if [ "${SOCKETIWA_IN_NETNS:-}" = 1 ]; then exec "$@"; fi
export SOCKETIWA_IN_NETNS=1
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && ip link set lo multicast on &&
    ip route add 224.0.0.0/4 dev lo && exec "$@"' netns "$@"
elif unshare -rn true 2>/dev/null; then
  exec unshare -rn bash -c 'ip link set lo up && ip link set lo multicast on &&
    ip route add 224.0.0.0/4 dev lo && exec "$@"' netns "$@"
fi
echo "netns.sh: cannot create a network namespace; running without one (multicast tests will skip)" >&2
exec "$@"
