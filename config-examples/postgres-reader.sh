#!/bin/sh
# PostgreSQL image init script (docker-entrypoint-initdb.d): the login role that
# Postfix's pgsql: lookups use. It may read only what `relaykit db upgrade` grants to
# relaykit_postfix (SELECT on the lookup views); it cannot see relay passwords it does
# not need, nor write anything.
set -eu
password=$(cat /run/secrets/db_reader_password)
psql -v ON_ERROR_STOP=1 -v pw="$password" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'relaykit_postfix') THEN
    CREATE ROLE relaykit_postfix NOLOGIN;
  END IF;
END $$;
SELECT format('CREATE ROLE relaykit_reader LOGIN PASSWORD %L IN ROLE relaykit_postfix', :'pw') \gexec
SQL
