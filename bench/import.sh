#!/usr/bin/env bash
# Import benchmark (one command): generate a synthetic MongoDB export of PATIENTS patients
# (default 100 000: ≈1.5 M rows with embedded items, conversations, prescriptions and activity
# logs), then in release mode into a fresh database: a dry run, the import, and `import verify`
# (field by field against the database). Prints rows/s (from the import's own report), the dry
# run's time against the real run's (same run, same machine), verify's documents/s, peak memory
# of each (/usr/bin/time -v) and the load average before each step. Targets: import ≥ 25 000
# rows/s at load ≤ 2 (issue 18), dry run as fast as the real run, verify ≥ 20 000 documents/s,
# memory bounded by the batch (compare PATIENTS=10000 with 100000: same peak).
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
"$BIN" migrate >/dev/null
"$BIN" bootstrap --org "Bench Clinic" --admin-email admin@bench.example >/dev/null

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "dry run (batch size $BATCH)... load $(load)"
/usr/bin/time -v "$BIN" import mongo --dir "$WORK/export" --org "Bench Clinic" --batch-size "$BATCH" --json \
    --dry-run --rejects "$WORK/dry-rejects.ndjson" >"$WORK/dry.json" 2>"$WORK/dry-time.txt"
echo "importing (batch size $BATCH)... load $(load)"
/usr/bin/time -v "$BIN" import mongo --dir "$WORK/export" --org "Bench Clinic" --batch-size "$BATCH" --json \
    >"$WORK/report.json" 2>"$WORK/time.txt"
echo "verifying... load $(load)"
/usr/bin/time -v "$BIN" import verify --dir "$WORK/export" --org "Bench Clinic" --json \
    >"$WORK/verify.json" 2>"$WORK/verify-time.txt"
echo "done, load $(load)"

python3 - "$WORK" <<'PY'
import json, re, sys
w = sys.argv[1]
def rss(name):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{w}/{name}").read()).group(1)) / 1024
r = json.load(open(f"{w}/report.json"))
d = json.load(open(f"{w}/dry.json"))
v = json.load(open(f"{w}/verify.json"))
data_rows = sum(n for k, n in r["rows_written"].items() if k != "legacy_id_map")
print(f"documents read:   {sum(c['read'] for c in r['collections'])}")
print(f"rows written:     {r['rows_written_total']} ({data_rows} data rows + {r['rows_written'].get('legacy_id_map', 0)} legacy_id_map)")
print(f"import:           {r['elapsed_seconds']:.1f} s, {r['rows_per_second']:.0f} rows/s (data rows/s {data_rows / r['elapsed_seconds']:.0f}), peak {rss('time.txt'):.1f} MiB, balanced {r['balanced']}")
print(f"dry run:          {d['elapsed_seconds']:.1f} s ({d['elapsed_seconds'] / r['elapsed_seconds']:.2f}x the real run), peak {rss('dry-time.txt'):.1f} MiB, balanced {d['balanced']}")
docs = sum(c['read'] for c in v['collections'])
fields = sum(c['fields_compared'] for c in v['collections'])
print(f"verify:           {v['elapsed_seconds']:.1f} s, {v['documents_per_second']:.0f} documents/s, {fields} fields, {v['mismatch_total']} mismatches, peak {rss('verify-time.txt'):.1f} MiB, ok {v['ok']}")
PY
