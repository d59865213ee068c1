#!/bin/sh
# relaykit's install recipe: the Dockerfile runs it to build the image, and .ci/run runs it
# on the CI host, so the image's steps are exercised on every CI run.
#
#   PREFIX   where the Python virtualenv goes (default /opt/relaykit)
#   PYTHON   the interpreter to build it with (default /usr/bin/python3: Debian's, which the
#            packages below install and the image runs; not whatever python3 is first on
#            PATH, e.g. a pyenv build, whose start-up alone is ~3.5 ms slower: a sixth of `setup`)
#   SRC      the project to install (default: the directory above this script)
#   EDITABLE=1  install in development mode (pip -e), for a working tree
#   EXTRAS   optional dependencies to install too (setup.py extras_require, e.g. bench)
#   PRUNE=1     the image: afterwards remove what only installing needs (pip, setuptools,
#               python3-venv, apt's caches and lists), all in the same layer
set -eu

PREFIX=${PREFIX:-/opt/relaykit}
PYTHON=${PYTHON:-/usr/bin/python3}
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
export DEBIAN_FRONTEND=noninteractive

# Debian's packages: Postfix with the lmdb/pcre/pgsql map types; Cyrus SASL's client
# mechanisms (PLAIN, LOGIN: without libsasl2-modules, a Recommends that
# --no-install-recommends drops, Postfix finds "No worthy mechs" and cannot log in to
# any relay); Dovecot for SASL (its pgsql driver: passwords from the database store);
# Python (libpq5, from postfix-pgsql, is psycopg's libpq); tini, the image's PID 1;
# OpenDKIM, the signing milter, and opendkim-genkey (`setup config dkim`).
# "No configuration" keeps the postfix package from writing a main.cf.
packages="postfix postfix-lmdb postfix-pcre postfix-pgsql libsasl2-modules dovecot-core dovecot-pgsql
  ca-certificates openssl python3 python3-venv procps util-linux iproute2 tini opendkim opendkim-tools"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi

# XOAUTH2 for Postfix's SMTP client (OAuth2 relays: Microsoft 365, Gmail): relaykit's own
# Cyrus SASL client plugin, target/sasl/xoauth2.c (Debian's libsasl2-modules-kdexoauth2
# does not work with Postfix: see the file), compiled into libsasl2's plugin directory.
# gcc, libc6-dev and libsasl2-dev are only for building it: PRUNE=1 removes them.
build="gcc libc6-dev libsasl2-dev"
missing=""
for p in $build; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi
sasl_dir="/usr/lib/$(gcc -print-multiarch)/sasl2"
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o /tmp/librelaykit_xoauth2.so "$SRC/target/sasl/xoauth2.c"
cmp -s /tmp/librelaykit_xoauth2.so "$sasl_dir/librelaykit_xoauth2.so" \
  || install -m 644 /tmp/librelaykit_xoauth2.so "$sasl_dir/librelaykit_xoauth2.so"
rm -f /tmp/librelaykit_xoauth2.so

# The Python package and its console scripts (relaykit, setup).
[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv "$PREFIX"
"$PREFIX/bin/pip" install -q --upgrade pip
target="$SRC${EXTRAS:+[$EXTRAS]}"
if [ "${EDITABLE:-0}" = 1 ]; then
  "$PREFIX/bin/pip" install -q -e "$target"
else
  "$PREFIX/bin/pip" install -q "$target"
fi
# `setup` and `relaykit` start without site.py: `#!$PREFIX/bin/python -S` (pip writes the
# interpreter alone). The script adds the venv's site-packages itself, or runs site.py when
# relaykit is not there (EDITABLE=1: a .pth file names the source tree). See target/bin/setup.
sed -i '1s|^\(#!/[^ ]*python[0-9.]*\)$|\1 -S|' "$PREFIX/bin/setup" "$PREFIX/bin/relaykit"
# relaykit's modules compiled into one file, which `import relaykit` reads before the usual
# imports (~2 ms of each `setup` command; relaykit/__init__.py, relaykit/edges/startcache.py).
"$PREFIX/bin/python" -m relaykit.edges.startcache >/dev/null

# The image's layout; a development install (EDITABLE=1) skips it, since it would replace
# this machine's /etc/postfix/main.cf. CI runs it (a real install), so the image's steps
# are tested on every run.
if [ "${EDITABLE:-0}" != 1 ]; then
  # `relaykit` and the DMS admin command `setup` on PATH (docker exec <ctr> setup relay ...)
  ln -sf "$PREFIX/bin/relaykit" /usr/local/bin/relaykit
  ln -sf "$PREFIX/bin/setup" /usr/local/bin/setup
  install -m 755 "$SRC/target/entrypoint.sh" /usr/local/bin/relaykit-entrypoint
  # Postfix's static configuration; relaykit adds the relay parameters at every start.
  for f in main.cf master.cf; do
    if [ -f "/etc/postfix/$f" ] && ! cmp -s "$SRC/target/postfix/$f" "/etc/postfix/$f"; then
      cp -p "/etc/postfix/$f" "/etc/postfix/$f.before-relaykit"
    fi
    install -m 644 "$SRC/target/postfix/$f" "/etc/postfix/$f"
  done
  # The DMS config directory, and bash completion for `setup` and `relaykit`.
  mkdir -p /tmp/docker-mailserver
  mkdir -p /usr/share/bash-completion/completions
  "$PREFIX/bin/setup" completion bash > /usr/share/bash-completion/completions/setup
  ln -sf setup /usr/share/bash-completion/completions/relaykit
  # The slim image has no bash-completion package: load ours in interactive shells.
  line='[ -r /usr/share/bash-completion/completions/setup ] && . /usr/share/bash-completion/completions/setup'
  grep -qxF "$line" /etc/bash.bashrc 2>/dev/null || echo "$line" >> /etc/bash.bashrc
fi

# The image keeps only what runs: the venv's pip and setuptools, python3-venv and apt's
# caches are for installing (about 140 MB). Never on a host: `make install` needs them.
if [ "${PRUNE:-0}" = 1 ]; then
  "$PREFIX/bin/pip" uninstall -q -y pip setuptools
  apt-get purge -y -qq --auto-remove python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl \
    $build >/dev/null
  # binutils (gcc's) stays behind otherwise: apt keeps what an installed package Suggests
  apt-get autoremove -y -qq --purge -o APT::AutoRemove::SuggestsImportant=false >/dev/null
  apt-get clean
  rm -rf /var/lib/apt/lists/* /root/.cache /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log
fi

# Postfix must not run from the Debian service scripts: `relaykit start` runs it.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now postfix dovecot >/dev/null 2>&1 || true; fi
echo "relaykit installed in $PREFIX"
