#!/bin/sh
# Installs what the user database tests (tests/userdb_*.rs) need: redis-server and PostgreSQL
# from Debian, plus coturn for turnadmin/turnserver interop. Idempotent; run as root.
# The tests start their own private redis-server and PostgreSQL instances on free loopback ports
# (and stop them by PID), so no system service has to run, and no systemd is needed.
set -eu

need=""
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
command -v psql >/dev/null 2>&1 || need="$need postgresql-client"
command -v turnadmin >/dev/null 2>&1 || need="$need coturn"

if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# Debian's packages try to start their services; without systemd they stay down, which is what
# the tests want (they bind free ports of their own).
redis-server --version
ls -d /usr/lib/postgresql/*/bin/initdb
id postgres >/dev/null
command -v turnadmin turnserver
