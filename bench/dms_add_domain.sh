#!/bin/bash
# Baseline: what docker-mailserver's bash `setup relay add-domain` does to the file (a
# grep for the key, then sed -i to replace its line or echo >> to append), without DMS's
# helper sourcing. Usage: dms_add_domain.sh <relaymap> <domain> <host> [<port>]
set -eu
DATABASE_RELAY=$1 DOMAIN=$2 HOST=$3 PORT=${4:-25}
if grep -qi "^@${DOMAIN}\b" "${DATABASE_RELAY}" 2>/dev/null; then
  sed -i "s|^@${DOMAIN}\b.*|@${DOMAIN}\t\t[${HOST}]:${PORT}|" "${DATABASE_RELAY}"
else
  printf '@%s\t\t[%s]:%s\n' "${DOMAIN}" "${HOST}" "${PORT}" >>"${DATABASE_RELAY}"
fi
