#!/usr/bin/env bash
# pgbench workloads next to their bare-SQL baseline, in one invocation: W1 reserve_credits over
# 100k accounts, W2 one hot account, W3 record_usage, W4 apply_recharge with 20% retried keys
# (then checked for double credits); each at 1, 4 and 16 clients, -M prepared.
# Usage: bench/pgbench/run.sh PSQL_ARGS... (host, port, user); writes the table to stdout.
# Environment: BENCH_SECONDS (10), W4_ACCOUNTS (10000), W4_DUP_PCT (20), WORKLOADS (W1 W2 W3 W4).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DURATION=${BENCH_SECONDS:-10}
W4_ACCOUNTS=${W4_ACCOUNTS:-10000}
W4_DUP_PCT=${W4_DUP_PCT:-20}
WORKLOADS=${WORKLOADS:-W1 W2 W3 W4}
db=billing_pgbench
conn=("$@")
"$PG_BIN/psql" -X -q "${conn[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
    "$PG_BIN/psql" -X -q "${conn[@]}" -d postgres -c "CREATE DATABASE $db"
"$PG_BIN/psql" -X -q "${conn[@]}" -d "$db" -v w4_accounts="$W4_ACCOUNTS" -f "$here/setup.sql" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runs=0

# bench SCRIPT CLIENTS RUN -> "tps p50_ms p99_ms transactions". Called in $(...), a subshell: the
# run number is counted by the caller (counted here it would stay 1, and W4's keys would repeat
# across runs; pgbench's hash() is seeded anew each run, so a repeated key would name another
# account or amount: a BL006 that is the benchmark's fault, not a retry).
bench() {
    local script=$1 clients=$2 runs=$3
    rm -f "$tmp"/log*
    # Each run starts from a checkpoint, so one run's dirty pages are not the next one's cost.
    "$PG_BIN/psql" -X -q "${conn[@]}" -d "$db" -c "CHECKPOINT"
    # The -D variables are W4's (a run number makes its fresh keys unique); other scripts ignore them.
    (cd "$tmp" && "$PG_BIN/pgbench" "${conn[@]}" -n -M prepared -c "$clients" -j "$clients" -T "$DURATION" \
        -D cnt=0 -D run="$runs" -D nclients="$clients" -D acc0=100001 -D naccounts="$W4_ACCOUNTS" \
        -D dup_pct="$W4_DUP_PCT" -f "$here/$script" --log --log-prefix=log "$db" >"$tmp/out" 2>&1) ||
        { cat "$tmp/out" >&2; exit 1; }
    local tps txns
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$tmp/out" | head -1)
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/out" | head -1)
    cat "$tmp"/log* | python3 -c '
import sys
lat = sorted(int(l.split()[2]) for l in sys.stdin if l.strip())
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0
print(f"'"$tps"' {p(0.50):.2f} {p(0.99):.2f} '"$txns"'")'
}

printf '%-34s %7s %9s %8s %8s %12s %7s\n' workload clients tps p50_ms p99_ms baseline_tps ratio
w4_calls=0 b4_calls=0
for spec in "W1:W1 reserve_credits, 100k accounts:w1_reserve.sql:b0.sql" \
            "W2:W2 reserve_credits, one hot account:w2_reserve_hot.sql:b0_hot.sql" \
            "W3:W3 record_usage, 100k accounts:w3_usage.sql:b0.sql" \
            "W4:W4 apply_recharge, ${W4_DUP_PCT}% retries:w4_recharge.sql:b4_recharge.sql"; do
    IFS=: read -r id name script base <<<"$spec"
    [[ " $WORKLOADS " == *" $id "* ]] || continue
    for clients in 1 4 16; do
        runs=$((runs + 1)); out=$(bench "$base" "$clients" "$runs") || exit 1
        read -r btps _ _ bn <<<"$out"
        runs=$((runs + 1)); out=$(bench "$script" "$clients" "$runs") || exit 1
        read -r tps p50 p99 n <<<"$out"
        if [[ $id == W4 ]]; then w4_calls=$((w4_calls + n)) b4_calls=$((b4_calls + bn)); fi
        ratio=$(python3 -c "print(f'{$tps / $btps:.2f}')")
        printf '%-34s %7s %9.0f %8s %8s %12.0f %7s\n' "$name" "$clients" "$tps" "$p50" "$p99" "$btps" "$ratio"
    done
done
if [[ " $WORKLOADS " == *" W4 "* ]]; then
    "$PG_BIN/psql" -X -q "${conn[@]}" -d "$db" -v acc0=100001 -v calls="$w4_calls" -v bcalls="$b4_calls" \
        -f "$here/w4_check.sql"
fi
