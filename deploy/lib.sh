# Shared by deploy/backup/restore-drill, deploy/ha/failover-test and deploy/pooling/pgbouncer-check:
# private PostgreSQL clusters on loopback (never the machine's own cluster), Custos with the
# production logins, and cleanup of everything started. Source it; do not run it.

PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUSTOS="${CUSTOS:-$REPO/target/debug/custos}"
[ -x "$CUSTOS" ] || { echo "no custos binary at $CUSTOS (cargo build, or set CUSTOS=)" >&2; exit 2; }
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL server binaries (apt-get install postgresql-15)" >&2; exit 2; }

PIDS=()
CLUSTERS=()
PGROUPS=()   # process groups (a Patroni node: Patroni, its worker and its PostgreSQL)

# PostgreSQL refuses to run as root: clusters belong to the postgres OS user when we are root.
# For background processes use "${AS_PG[@]}" prog … & (no function, so $! is prog's own pid).
if [ "$(id -u)" = 0 ]; then
    AS_PG=(env HOME=/tmp setpriv --reuid=postgres --regid=postgres --init-groups --)
else
    AS_PG=()
fi
as_pg() { "${AS_PG[@]}" "$@"; }

# cleanup: stop every process and cluster this script started (by pid / data directory).
cleanup() {
    local p c i alive
    for p in "${PGROUPS[@]}"; do kill -- "-$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for i in $(seq 1 50); do  # up to 10 s for a clean stop (Patroni stops its PostgreSQL)
        alive=0
        for p in "${PIDS[@]}"; do
            case "$(ps -o stat= -p "$p" 2>/dev/null)" in ""|Z*) ;; *) alive=1 ;; esac
        done
        [ $alive = 0 ] && break
        sleep 0.2
    done
    for p in "${PGROUPS[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    for c in "${CLUSTERS[@]}"; do
        [ -f "$c/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$c" -m immediate stop >/dev/null 2>&1 || true
    done
    if [ -n "${WORK:-}" ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; fi
}

# new_workdir: a private directory the postgres user can write.
new_workdir() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/custos-$1.XXXXXX")"
    chmod 0755 "$WORK"
    [ "$(id -u)" = 0 ] && chown postgres: "$WORK"
    mkdir -p "$WORK/custos"
}

# init_cluster DIR PORT [extra postgresql.conf lines...]: a trust-auth cluster on 127.0.0.1:PORT.
init_cluster() {
    local dir="$1" port="$2"; shift 2
    as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = on"
        for l in "$@"; do echo "$l"; done
    } | as_pg tee -a "$dir/postgresql.conf" >/dev/null
}

start_cluster() {
    local dir="$1"
    CLUSTERS+=("$dir")
    as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 600 start >/dev/null
}

psql_at() { # psql_at PORT DB SQL...
    local port="$1" db="$2"; shift 2
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" -At "$@"
}

# keys: fresh root keys in the environment (a real site keeps them in its secret store).
new_keys() {
    export CUSTOS_KEK="$(openssl rand -base64 32)"
    export CUSTOS_JWT_SIGNING_KEY="$(openssl rand -base64 32)"
    export CUSTOS_LEDGER_SIGNING_KEY="$(openssl rand -base64 32)"
    export CUSTOS_DATA_DIR="$WORK/custos" CUSTOS_LOG="${CUSTOS_LOG:-warn}"
}

# as LOGIN PORT -- custos ARGS: runs custos with DATABASE_URL for that login of database custos.
as() {
    local login="$1" port="$2"; shift 2
    DATABASE_URL="postgres://custos_$login@127.0.0.1:$port/custos" "$CUSTOS" "$@"
}

# site PORT: the database administrator's step, then migrate as the owner.
site() {
    local port="$1"
    psql_at "$port" postgres -c "CREATE DATABASE custos" >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:$port/custos" "$CUSTOS" logins create --database custos >/dev/null
    as owner "$port" migrate >/dev/null 2>"$WORK/migrate.log" || { cat "$WORK/migrate.log" >&2; return 1; }
}

# wait_http URL [seconds]
wait_http() {
    local url="$1" t="${2:-60}" i
    for ((i = 0; i < t * 10; i++)); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timeout waiting for $url" >&2
    return 1
}

now_ms() { date +%s%3N; }

# bg LOG LOGIN PORT ARGS...: custos in the background as LOGIN (stderr to LOG); its pid is
# LAST_PID and is stopped by cleanup. Prefix variables (CUSTOS_BIND=… bg …) reach it.
bg() {
    local log="$1" login="$2" port="$3"; shift 3
    DATABASE_URL="postgres://custos_$login@127.0.0.1:$port/custos" "$CUSTOS" "$@" 2>>"$log" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
