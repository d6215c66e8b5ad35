#!/usr/bin/env bash
# A Colony cluster on loopback: PostgreSQL and N colonyd nodes, for trying
# the cluster out (docs/clustering.md) and for the cluster tests.
#
#   deploy/local/cluster.sh start [N=3] [DIR=./var/cluster]  PostgreSQL (unless COLONY_STORE is set) and N nodes
#   deploy/local/cluster.sh node K [DIR]                     (re)starts node K alone (after a kill, say)
#   deploy/local/cluster.sh stop [DIR]                       SIGTERM to every node it started, then PostgreSQL
#
# Node K is named nodeK, serves HTTP on 127.0.0.1:$((HTTP_BASE+K)) and the
# cluster port on 127.0.0.1:$((CLUSTER_BASE+K)); its data directory, log
# and pid file are DIR/nodeK/, DIR/nodeK.log and DIR/nodeK.pid. Any other
# option comes from the environment (COLONY_AUTH_JWT_HS256_SECRET, ...) or
# from COLONYD_ARGS. Processes are stopped by the pids this script wrote,
# never by name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COLONYD=${COLONYD:-$root/build/bin/colonyd}
HTTP_BASE=${HTTP_BASE:-8080}
CLUSTER_BASE=${CLUSTER_BASE:-7100}
CLUSTER_NAME=${CLUSTER_NAME:-colony}

store_of() {
  local dir=$1
  if [ -n "${COLONY_STORE:-}" ]; then echo "$COLONY_STORE"; else cat "$dir/pg/dsn"; fi
}

wait_ready() { # K DIR
  local k=$1 dir=$2 port=$((HTTP_BASE + $1))
  for _ in $(seq 1 300); do
    if ! kill -0 "$(cat "$dir/node$k.pid")" 2>/dev/null; then
      echo "node$k exited; its log:" >&2; tail -n 30 "$dir/node$k.log" >&2; return 1
    fi
    if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import sys, http.client
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
c.request("GET", "/readyz")
sys.exit(0 if c.getresponse().status == 200 else 1)
PY
    sleep 0.2
  done
  echo "node$k is not ready after 60 s; its log:" >&2; tail -n 30 "$dir/node$k.log" >&2; return 1
}

start_node() { # K DIR
  local k=$1 dir=$2
  mkdir -p "$dir/node$k"
  # Every node of a cluster seals webhook secrets under one key (the hello
  # refuses a peer with another): made once per cluster directory, unless
  # COLONY_SECRETS_KEY is set.
  if [ -z "${COLONY_SECRETS_KEY:-}" ]; then
    [ -s "$dir/secrets-key" ] || (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/secrets-key")
    COLONY_SECRETS_KEY=$(cat "$dir/secrets-key")
  fi
  # shellcheck disable=SC2086
  COLONY_SECRETS_KEY="$COLONY_SECRETS_KEY" "$COLONYD" --listen "127.0.0.1:$((HTTP_BASE + k))" --cluster-listen "127.0.0.1:$((CLUSTER_BASE + k))" \
    --cluster-name "$CLUSTER_NAME" --node-name "node$k" --data-dir "$dir/node$k" --store "$(store_of "$dir")" \
    ${COLONYD_ARGS:-} >>"$dir/node$k.log" 2>&1 &
  echo $! >"$dir/node$k.pid"
}

cmd=${1:-}
case "$cmd" in
  start)
    n=${2:-3}
    dir=$(realpath -m "${3:-./var/cluster}")
    mkdir -p "$dir"
    [ -n "${COLONY_STORE:-}" ] || "$root/tests/support/pg_fixture.sh" start "$dir/pg" >/dev/null
    for k in $(seq 1 "$n"); do start_node "$k" "$dir"; done
    for k in $(seq 1 "$n"); do wait_ready "$k" "$dir"; done
    echo "$n nodes ready: HTTP on 127.0.0.1:$((HTTP_BASE + 1))..$((HTTP_BASE + n)), store $(store_of "$dir" | sed 's/:[^:@]*@/:***@/')"
    ;;
  node)
    k=${2:?node number}
    dir=$(realpath -m "${3:-./var/cluster}")
    start_node "$k" "$dir"
    wait_ready "$k" "$dir"
    echo "node$k ready on 127.0.0.1:$((HTTP_BASE + k))"
    ;;
  stop)
    dir=$(realpath -m "${2:-./var/cluster}")
    for f in "$dir"/node*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      kill -TERM "$pid" 2>/dev/null || true
    done
    for f in "$dir"/node*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$f"
    done
    [ -n "${COLONY_STORE:-}" ] || "$root/tests/support/pg_fixture.sh" stop "$dir/pg"
    ;;
  *)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
