#!/bin/bash
# Applies the project's supabase/migrations (mounted at /finos-migrations) in file-name order,
# as supabase_admin, after the image's own migrate.sh. Runs only on an empty database.
set -euo pipefail
for sql in /finos-migrations/*.sql; do
  echo "$0: applying $(basename "$sql")"
  psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc -U supabase_admin -d postgres -f "$sql"
done
