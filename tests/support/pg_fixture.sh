#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL 15 server for the tests: initdb and
# pg_ctl from Debian's postgresql-15, run as a non-root user (the `postgres`
# system user when we are root), on a free loopback port, trust auth on
# 127.0.0.1 only. Writes the DSN to $STATE/dsn for the tests to read.
#   pg_fixture.sh start STATE_DIR | pg_fixture.sh stop STATE_DIR
# PG_LISTEN (default 127.0.0.1) is the address it listens on and the DSNs name
# (the cluster partition test runs it on a bridge inside a network namespace).
set -euo pipefail
cmd=$1
state=$(realpath -m "$2")
bin=/usr/lib/postgresql/15/bin

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    "$0" stop "$state" >/dev/null 2>&1 || true
    data=$(mktemp -d /tmp/colony-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data"
    mkdir -p "$state"
    echo "$data" > "$state/datadir"
    host=${PG_LISTEN:-127.0.0.1}
    port=$(python3 -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$host")
    as_owner "$bin/initdb" -D "$data/db" -U colony --auth=trust -E UTF8 --no-sync >"$state/initdb.log" 2>&1
    # initdb trusts loopback only; on another address, the hosts of its subnet too.
    [ "$host" = 127.0.0.1 ] || echo "host all all samenet trust" >>"$data/db/pg_hba.conf"
    as_owner "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
      -o "-c listen_addresses=$host -c port=$port -c unix_socket_directories=$data -c fsync=on -c max_connections=200" \
      start >"$state/pg_ctl.log" 2>&1 || { cat "$state/pg_ctl.log" "$data/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h "$host" -p "$port" -U colony colony_test
    echo "postgresql://colony@$host:$port/colony_test" > "$state/dsn"
    # One database per suite that CTest may run at the same time as another:
    # nodes that share a database share its due timers, outbox and webhook
    # cursor (one cluster, until the cluster issue partitions that work), so
    # concurrent suites would fire each other's timers.
    for suite in integration e2e hardening cluster; do
      as_owner "$bin/createdb" -h "$host" -p "$port" -U colony "colony_$suite"
      echo "postgresql://colony@$host:$port/colony_$suite" > "$state/dsn-$suite"
    done
    echo "$port" > "$state/port"
    echo "PostgreSQL 15 for tests on $host:$port (data in $data)"
    ;;
  stop)
    [ -f "$state/datadir" ] || exit 0
    data=$(cat "$state/datadir")
    as_owner "$bin/pg_ctl" -D "$data/db" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$data"
    rm -f "$state/datadir" "$state/dsn" "$state/dsn-"* "$state/port"
    ;;
  *) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
