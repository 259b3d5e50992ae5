#!/usr/bin/env bash
# pgbench workloads next to their bare-SQL baseline, in one invocation: W1 reserve_credits over
# 100k accounts, W2 one hot account, W3 record_usage (against B0, and against B3, a bare charge
# writing the same rows), W4 apply_recharge with 20% retried keys (then checked for double
# credits); each at 1, 4 and 16 clients, -M prepared. A shared machine's speed drifts from one
# run to the next, so each workload and its baseline run in alternating order, BENCH_ROUNDS
# times: the ratio printed is the median of the rounds' ratios (its range beside it), the TPS the
# median of the rounds, the latencies over all rounds' transactions.
# Usage: bench/pgbench/run.sh PSQL_ARGS... (host, port, user); writes the table to stdout.
# Environment: BENCH_SECONDS (6 a run), BENCH_ROUNDS (3), W4_ACCOUNTS (10000), W4_DUP_PCT (20),
# WORKLOADS (W1 W2 W3 W4).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DURATION=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-3}
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

# bench SCRIPT CLIENTS RUN -> "tps transactions"; appends the run's latencies (us) to
# $tmp/lat.SCRIPT. Called in $(...), a subshell: the run number is counted by the caller
# (counted here it would stay 1, and W4's keys would repeat across runs; pgbench's hash() is
# seeded anew each run, so a repeated key would name another account or amount: a BL006 that is
# the benchmark's fault, not a retry).
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
    cat "$tmp"/log* | awk '{print $3}' >>"$tmp/lat.$script"
    echo "$tps $txns"
}

# summary W_TPS... -- B_TPS... -> "median_w_tps median_b_tps median_ratio min_ratio max_ratio"
summary() {
    python3 - "$@" <<'PY'
import statistics, sys
a = sys.argv[1:]; i = a.index("--"); w = list(map(float, a[:i])); b = list(map(float, a[i + 1:]))
r = [x / y for x, y in zip(w, b)]
print(f"{statistics.median(w):.0f} {statistics.median(b):.0f} {statistics.median(r):.2f} {min(r):.2f} {max(r):.2f}")
PY
}
# percentiles SCRIPT -> "p50_ms p99_ms" over every run of SCRIPT since the last reset
percentiles() {
    python3 -c '
import sys
lat = sorted(int(l) for l in open(sys.argv[1]) if l.strip())
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0
print(f"{p(0.50):.2f} {p(0.99):.2f}")' "$tmp/lat.$1"
}
row() { # row NAME CLIENTS W_TPS B_TPS RATIO MIN MAX P50 P99
    printf '%-34s %7s %9s %8s %8s %12s %7s %11s\n' "$1" "$2" "$3" "$8" "$9" "$4" "$5" "$6-$7"
}

printf '%-34s %7s %9s %8s %8s %12s %7s %11s\n' workload clients tps p50_ms p99_ms baseline_tps ratio ratio_range
# W4 and B4 calls over all their runs (counted from the start of W4), for the double-credit check
w4_calls=0 b4_calls=0
# id:name:script:baseline[:second baseline:its row's name]
for spec in "W1:W1 reserve_credits, 100k accounts:w1_reserve.sql:b0.sql" \
            "W2:W2 reserve_credits, one hot account:w2_reserve_hot.sql:b0_hot.sql" \
            "W3:W3 record_usage, 100k accounts:w3_usage.sql:b0.sql:b3_charge.sql:W3 against B3 (a bare charge)" \
            "W4:W4 apply_recharge, ${W4_DUP_PCT}% retries:w4_recharge.sql:b4_recharge.sql"; do
    IFS=: read -r id name script base base2 name2 <<<"$spec"
    [[ " $WORKLOADS " == *" $id "* ]] || continue
    for clients in 1 4 16; do
        rm -f "$tmp"/lat.*
        if [[ $id == W4 && $clients == 1 ]]; then w4_calls=0 b4_calls=0; fi
        wt=() bt=() b2t=()
        for ((round = 1; round <= ROUNDS; round++)); do
            order=("$base" "$script" ${base2:+"$base2"})
            if ((round % 2 == 0)); then order=(${base2:+"$base2"} "$script" "$base"); fi
            for s in "${order[@]}"; do
                runs=$((runs + 1)); out=$(bench "$s" "$clients" "$runs") || exit 1
                read -r tps n <<<"$out"
                case $s in
                    "$script") wt+=("$tps"); w4_calls=$((w4_calls + n)) ;;
                    "$base") bt+=("$tps"); b4_calls=$((b4_calls + n)) ;;
                    *) b2t+=("$tps") ;;
                esac
            done
        done
        read -r p50 p99 <<<"$(percentiles "$script")"
        read -r w b r lo hi <<<"$(summary "${wt[@]}" -- "${bt[@]}")"
        row "$name" "$clients" "$w" "$b" "$r" "$lo" "$hi" "$p50" "$p99"
        if [[ -n $base2 ]]; then
            read -r w b r lo hi <<<"$(summary "${wt[@]}" -- "${b2t[@]}")"
            row "$name2" "$clients" "$w" "$b" "$r" "$lo" "$hi" "$p50" "$p99"
        fi
    done
done
if [[ " $WORKLOADS " == *" W4 "* ]]; then
    "$PG_BIN/psql" -X -q "${conn[@]}" -d "$db" -v acc0=100001 -v calls="$w4_calls" -v bcalls="$b4_calls" \
        -f "$here/w4_check.sql"
fi
