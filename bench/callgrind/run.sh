#!/usr/bin/env bash
# Instructions per call, counted by callgrind: repeatable for the same build and data, whatever
# else the machine is doing (pgbench's TPS is not). A throw-away cluster under /tmp, a single-user
# backend (postgres --single) under valgrind, 3,000 prepared calls of each workload on 2,000
# accounts, each workload on a fresh copy of the data; prints instructions per call and the ratio
# to B0, and keeps the callgrind files for callgrind_annotate. Uses the installed build: run after ./run bench (a release build).
# Usage: [EXTRA_SQL=...] bench/callgrind/run.sh [WORKLOAD...]   (default: b0 w1 w3 b3; b3 is the bare charge)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
CALLS=${CALLS:-3000}
dir=${CALLGRIND_DIR:-/tmp/billing-callgrind}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
rm -rf "$dir"; mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres: "$dir"
as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
printf "port = 28839\nunix_socket_directories = '%s'\nlisten_addresses = ''\n" "$dir" >>"$dir/data/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
"$PG_BIN/psql" -X -q -h "$dir" -p 28839 -U postgres -d postgres -c "CREATE DATABASE perf"
"$PG_BIN/psql" -X -q -h "$dir" -p 28839 -U postgres -d perf -f "$here/setup.sql" >/dev/null
# An experiment without a rebuild: SQL run on the data before it is copied, e.g.
# EXTRA_SQL="ALTER FUNCTION billing.reserve_credits(bigint,numeric,text,timestamptz,text) RESET search_path"
if [ -n "${EXTRA_SQL:-}" ]; then
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p 28839 -U postgres -d perf -c "$EXTRA_SQL" ||
        { as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w stop >/dev/null; exit 1; }
fi
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w stop >/dev/null
# Every workload starts from this copy: one workload's rows would change the next one's cost.
as_pg cp -a "$dir/data" "$dir/data.orig"
declare -A stmt=(
    [b0]="WITH u AS (UPDATE public.b0_accounts SET available = available - 0.01 WHERE id = \$1 AND available >= 0.01 RETURNING id) INSERT INTO public.b0_ledger (account_id, amount) SELECT id, -0.01 FROM u"
    [w1]="SELECT billing.reserve_credits(\$1, 0.01)"
    [b3]="WITH a AS (UPDATE public.b3_accounts SET balance = balance - 0.01 WHERE id = \$1 AND balance - reserved + overdraft_limit >= 0.01 RETURNING id), u AS (INSERT INTO public.b3_usage (account_id, channel, category, units, price, carrier_fee, occurred_at) SELECT id, 'sms', 'automation', 1, 0.01, 0, now() FROM a RETURNING account_id, id), l AS (INSERT INTO public.b3_ledger (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id) SELECT u.account_id, u.id, v.acct, 'INR', v.amount, 'usage', 'usage', u.id FROM u, (VALUES ('wallet', -0.01), ('revenue', 0.01)) v(acct, amount)), d AS (INSERT INTO public.b3_daily AS d (account_id, day, channel, category, units, amount) SELECT u.account_id, current_date, 'sms', 'automation', 1, 0.01 FROM u ON CONFLICT (account_id, day, channel, category) DO UPDATE SET units = d.units + EXCLUDED.units, amount = d.amount + EXCLUDED.amount) SELECT id FROM u;"
    [w3]="SELECT billing.record_usage(\$1, 'sms', 'automation', 1)"
)
declare -A per_call
printf '%-6s %14s %10s\n' workload instr_per_call vs_b0
for w in "${@:-b0 w1 w3 b3}"; do
    for w1 in $w; do
        # the same pseudo-random accounts for every workload
        { echo "PREPARE p(bigint) AS ${stmt[$w1]};"
          awk -v n="$CALLS" 'BEGIN { srand(1); for (i = 0; i < n; i++) printf "EXECUTE p(%d);\n", 1 + int(rand() * 2000) }'
        } >"$dir/$w1.sql"
        chmod 644 "$dir/$w1.sql"
        as_pg rm -rf "$dir/data"; as_pg cp -a "$dir/data.orig" "$dir/data"
        total=$(as_pg valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.$w1.out" \
            "$PG_BIN/postgres" --single -D "$dir/data" -c synchronous_commit=off perf <"$dir/$w1.sql" 2>&1 >/dev/null |
            sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
        per_call[$w1]=$((total / CALLS))
        ratio=-
        [ -n "${per_call[b0]:-}" ] && ratio=$(python3 -c "print(f'{${per_call[$w1]} / ${per_call[b0]}:.2f}')")
        printf '%-6s %14s %10s\n' "$w1" "${per_call[$w1]}" "$ratio"
    done
done
echo "callgrind files: $dir/callgrind.*.out (callgrind_annotate --inclusive=yes FILE)"
