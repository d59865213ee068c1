#!/bin/sh
# relaykit's install recipe: the Dockerfile runs it to build the image, and .ci/run runs it
# on the CI host, so the image's steps are exercised on every CI run.
#
#   PREFIX   where the Python virtualenv goes (default /opt/relaykit)
#   PYTHON   the interpreter to build it with (default python3)
#   SRC      the project to install (default: the directory above this script)
#   EDITABLE=1  install in development mode (pip -e), for a working tree
set -eu

PREFIX=${PREFIX:-/opt/relaykit}
PYTHON=${PYTHON:-python3}
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
export DEBIAN_FRONTEND=noninteractive

# Debian's packages: Postfix with the lmdb/pcre/pgsql map types, Dovecot for SASL,
# Python. "No configuration" keeps the postfix package from writing a main.cf.
packages="postfix postfix-lmdb postfix-pcre postfix-pgsql dovecot-core ca-certificates
  openssl python3 python3-venv procps util-linux iproute2"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi

# The Python package and its console scripts (relaykit, setup).
[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv "$PREFIX"
"$PREFIX/bin/pip" install -q --upgrade pip
if [ "${EDITABLE:-0}" = 1 ]; then
  "$PREFIX/bin/pip" install -q -e "$SRC"
else
  "$PREFIX/bin/pip" install -q "$SRC"
fi

# Postfix must not run from the Debian service scripts: `relaykit start` runs it.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now postfix dovecot >/dev/null 2>&1 || true; fi
echo "relaykit installed in $PREFIX"
