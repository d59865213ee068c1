#!/bin/sh
# Run a command in a private network namespace where only loopback exists, so that a
# test Postfix can never reach anything but 127.0.0.1 (no DNS, no stray bounces).
# Falls back to the host's network, with a warning, where namespaces are not allowed.
if unshare --net true 2>/dev/null; then
  exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "netns.sh: cannot create a network namespace; running on the host network" >&2
exec "$@"
