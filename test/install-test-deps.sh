#!/bin/sh
# What the tests need beyond the image: swaks, a PostgreSQL server, zsh (completion
# test). The Python test tools are setup.py's `test` extras (Makefile: install.sh EXTRAS=test).
set -eu
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in swaks postgresql postgresql-client zsh; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi
# The Debian package would start a cluster; tests start their own on a private socket.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now postgresql >/dev/null 2>&1 || true; fi
