#!/usr/bin/env bash
# Import benchmark (one command): generate a synthetic MongoDB export of PATIENTS patients
# (default 100 000: ≈1.5 M rows with embedded items, conversations, prescriptions and activity
# logs), import it in release mode into a fresh database, and print rows/s (from the import's
# own report) and peak memory (/usr/bin/time -v). Target: ≥ 20 000 rows/s, memory bounded by
# the batch size (compare PATIENTS=10000 with 100000: same peak).
#
#   bench/import.sh [PATIENTS] [BATCH_SIZE]
#
# Needs PostgreSQL at 127.0.0.1:5432 reachable as `postgres` without a password, python3 and
# GNU time. Results are recorded in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PATIENTS=${1:-100000}
BATCH=${2:-1000}
ADMIN_URL=${CUSTOS_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cargo build --release --locked --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/custos
WORK=$(mktemp -d)
DB=custos_bench_$$
cleanup() {
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
export DATABASE_URL=${ADMIN_URL%/*}/$DB CUSTOS_DATA_DIR=$WORK/data CUSTOS_LOG=warn

echo "generating $PATIENTS patients..."
"$BIN" demo generate --patients "$PATIENTS" --seed 1 --out "$WORK/export" >/dev/null
du -sh "$WORK/export" | awk '{print "export size: " $1}'
"$BIN" bootstrap --org "Bench Clinic" --admin-email admin@bench.example >/dev/null 2>&1

echo "importing (batch size $BATCH)..."
/usr/bin/time -v "$BIN" import mongo --dir "$WORK/export" --org "Bench Clinic" --batch-size "$BATCH" --json \
    >"$WORK/report.json" 2>"$WORK/time.txt"

python3 - "$WORK/report.json" "$WORK/time.txt" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
wall = re.search(r"Elapsed \(wall clock\) time.*: (.+)", t).group(1)
data_rows = sum(v for k, v in r["rows_written"].items() if k != "legacy_id_map")
print(f"documents read:   {sum(c['read'] for c in r['collections'])}")
print(f"rows written:     {r['rows_written_total']} ({data_rows} data rows + {r['rows_written'].get('legacy_id_map', 0)} legacy_id_map)")
print(f"import time:      {r['elapsed_seconds']:.1f} s (process wall {wall})")
print(f"rows/s:           {r['rows_per_second']:.0f} (data rows/s {data_rows / r['elapsed_seconds']:.0f})")
print(f"peak memory:      {rss / 1024:.1f} MiB")
print(f"balanced:         {r['balanced']}")
PY
