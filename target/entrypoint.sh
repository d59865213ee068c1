#!/bin/sh
# The image's entrypoint, run under tini (PID 1: reaps orphaned processes, forwards
# SIGTERM/SIGINT to us). The default command is `start`: the server. Any other command
# runs as given, so one-off commands work as with docker-mailserver's image:
#   docker run --rm relaykit setup relay check     docker run --rm relaykit relaykit --version
#   docker run --rm relaykit configure             docker run --rm -it relaykit bash
set -e
case "${1:-start}" in
  # relaykit's own verbs and options: `docker run relaykit start`, `... --version`
  start|configure|health|db|-*) exec relaykit "$@" ;;
esac
exec "$@"
