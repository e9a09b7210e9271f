#!/usr/bin/env bash
# Run once by the postgres image on a new data volume (/docker-entrypoint-initdb.d), as its superuser:
# creates the non-superuser admin login the platform's init container migrates with.
set -euo pipefail
psql --variable ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set admin_user="$RETAIL_PG_ADMIN_USER" \
    --set admin_password="$(cat /run/secrets/retail_pg_admin_password)" \
    --set db="$POSTGRES_DB" \
    --file /opt/retail-initdb/retail-admin.sql
