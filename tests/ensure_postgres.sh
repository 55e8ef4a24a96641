#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries the loader tests start are installed.
# Nothing to do when ENOS_TEST_POSTGRES_URL names a server, or initdb/pg_ctl are found
# where tests/pgserver.py looks (PATH, pg_config --bindir, /usr/lib/postgresql/*/bin).
set -euo pipefail

if [[ -n "${ENOS_TEST_POSTGRES_URL:-}" ]]; then
    exit 0
fi

has_server() {
    local dir
    for dir in "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")" \
               "$(pg_config --bindir 2>/dev/null || true)" \
               /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            return 0
        fi
    done
    return 1
}

if has_server; then
    exit 0
fi

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "ensure_postgres: installing PostgreSQL with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    has_server && exit 0
fi

echo "ensure_postgres: no PostgreSQL server binaries; install PostgreSQL" \
     "or set ENOS_TEST_POSTGRES_URL" >&2
exit 1
