#!/usr/bin/env bash
# billing: the quick reliability checks (issue 7).
#
#   1.  a bank-style randomized pgbench workload on 6 INR + 2 USD accounts, then the invariants
#       (tests/reliability/checks.sql: verify_ledger, money conserved, holds and payments
#       settled once, idempotency keys applied once, campaigns never partial, ...);
#   2a. pg_terminate_backend of a large run_due_campaigns: nothing partial, invariants hold;
#   2b. kill -9 of such a backend (the postmaster restarts every backend): the same;
#   2c. pg_ctl stop -m immediate during the bank workload, restart: every transaction seen
#       committed survives, invariants hold;
#   2d. statement_timeout inside run_due_campaigns (57014, nothing partial) and lock_timeout
#       inside reserve_credits / apply_recharge (55P03, nothing changed).
#
# Environment (set by ./run test):
#   PG_BIN               e.g. /usr/lib/postgresql/15/bin
#   PGHOST, PGPORT       the cluster (unix socket directory, port); PGUSER=postgres
#   PGDATA_DIR           the cluster's data directory (pg_ctl stop/start in 2c)
#   AS_PG                prefix that runs a command as the postgres OS user ("runuser -u postgres --"),
#                        empty when already that user
#   RELIABILITY_SECONDS  bank workload duration (default 20)
#   RELIABILITY_SEED     pgbench --random-seed (default random; always printed, to replay)
#   RELIABILITY_CAMPAIGNS  due campaigns for the faults (default 20000)
#
# Output: one line per check, "ok - <name>" or "not ok - <name>: <detail>", lines starting with
# "#" for information, then "reliability: N ok, M not ok". Exit status 1 when any check failed.
# Creates (drops first) database billing_reliability. The cluster is left running.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
: "${PG_BIN:?PG_BIN must be set}" "${PGHOST:?PGHOST must be set}" "${PGPORT:?PGPORT must be set}"
: "${PGDATA_DIR:?PGDATA_DIR must be set}"
export PGHOST PGPORT PGUSER=${PGUSER:-postgres}
unset PGDATABASE PGOPTIONS
AS_PG=${AS_PG-}
SECS=${RELIABILITY_SECONDS:-20}
SEED=${RELIABILITY_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
NCAMP=${RELIABILITY_CAMPAIGNS:-20000}
DB=billing_reliability
START=$SECONDS

WORK=$(mktemp -d /tmp/billing-reliability.XXXXXX)
chmod 0755 "$WORK"
BG_PIDS=()

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
notok() { FAIL=$((FAIL + 1)); echo "not ok - $1: $2"; }
check() { # check NAME DETAIL-IF-FAILED 'CONDITION' (a shell condition, evaluated)
    if eval "$3"; then ok "$1"; else notok "$1" "$2"; fi
}
info() { echo "# $*"; }

q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$DB" "$@"; }
qpg() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d postgres "$@"; }
accepting() { "$PG_BIN/psql" -X -q -tA -d postgres -c 'SELECT 1' >/dev/null 2>&1; }
server_running() { $AS_PG "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; }

# The server must not inherit RUST_BACKTRACE (pgrx would add a backtrace to error details).
pg_start() {
    $AS_PG env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$SERVER_LOG" -w -t 60 start >>"$WORK/pg_ctl.out" 2>&1
}

wait_accepting() { # wait_accepting SECONDS: 0 once the server accepts connections
    local deadline=$((SECONDS + $1))
    until accepting; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

# The log file the running postmaster writes to (pg_ctl -l), else one under $WORK.
server_log() {
    local pid f
    pid=$(head -1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)
    f=$(readlink "/proc/$pid/fd/2" 2>/dev/null)
    if [ -n "$f" ] && [ -f "$f" ]; then echo "$f"; return; fi
    touch "$WORK/server.log" && chmod 0666 "$WORK/server.log"
    echo "$WORK/server.log"
}

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if ! accepting && ! server_running; then
        echo "# the cluster was stopped: starting it again"
        pg_start || echo "# could not restart the cluster: see $SERVER_LOG"
    fi
    if [ "$FAIL" = 0 ]; then rm -rf "$WORK"; else echo "# logs kept in $WORK"; fi
}
trap cleanup EXIT

# Waits for a background job, at most N seconds, then kills it. Returns its exit status.
wait_bounded() { # wait_bounded PID SECONDS
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then kill "$pid" 2>/dev/null; sleep 0.5; kill -9 "$pid" 2>/dev/null; fi
        sleep 0.1
    done
    wait "$pid"
}

# The pid of the backend of application_name $1 that is active in a statement matching $2,
# once it has been so for 0.3 s (so it is well inside the call), or empty after N seconds.
active_backend() { # active_backend APPNAME PATTERN SECONDS
    local deadline=$((SECONDS + $3)) pid=""
    while [ $SECONDS -lt $deadline ]; do
        pid=$(qpg -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1' AND state = 'active'
                        AND query LIKE '%$2%' AND now() - query_start > interval '300 ms'" 2>/dev/null | head -1)
        [ -n "$pid" ] && { echo "$pid"; return; }
        sleep 0.05
    done
}

invariants() { # invariants NAME (and the time so far)
    local failed
    if failed=$(q -c "SELECT rel.failed_checks()" 2>&1); then
        if [ -z "$failed" ]; then ok "$1: invariants"; else notok "$1: invariants" "$failed"; fi
    else
        notok "$1: invariants" "check query failed: $failed"
    fi
    info "$1 done at $((SECONDS - START)) s"
}

info "seed $SEED (replay: RELIABILITY_SEED=$SEED RELIABILITY_SECONDS=$SECS), $NCAMP fault campaigns"

if ! accepting; then
    notok "cluster" "no server accepts connections at $PGHOST:$PGPORT"
    echo "reliability: $PASS ok, $FAIL not ok"
    exit 1
fi
SERVER_LOG=$(server_log)

# --- set-up --------------------------------------------------------------------------------------
if ! out=$(qpg -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>&1 &&
           q -c "SET client_min_messages = warning" -c "CREATE EXTENSION billing" \
             -f "$HERE/setup.sql" -f "$HERE/checks.sql" 2>&1 >/dev/null); then
    notok "setup" "$out"
    echo "reliability: $PASS ok, $FAIL not ok"
    exit 1
fi
SYNC=$(q -c "SHOW synchronous_commit")

# The checks can fail: a balance changed behind the API's back (triggers off) must be seen.
tampered=$(q <<'SQL' 2>&1
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE billing.accounts SET balance = balance + 1 WHERE id = (SELECT account_id FROM rel.bank_accounts WHERE idx = 2);
SELECT rel.failed_checks() LIKE '%money_conserved_per_account%';
ROLLBACK;
SQL
)
check "invariant checks detect a tampered balance" "$tampered" '[ "$tampered" = t ]'

# --- 1. the bank workload --------------------------------------------------------------------------
bank() { # bank SECONDS OUTFILE: the workload, 8 clients, 4:1 READ COMMITTED : REPEATABLE READ
    "$PG_BIN/pgbench" -n -c 8 -j 2 -T "$1" --random-seed="$SEED" \
        -f "$HERE/bank.pgbench@4" -f "$HERE/bank_rr.pgbench@1" "$DB" >"$2" 2>&1
}
bank "$SECS" "$WORK/bank.out"
rc=$?
aborted=$(grep -E 'aborted|ERROR|FATAL' "$WORK/bank.out" | head -5 | tr '\n' ' ')
check "bank: $SECS s of pgbench, no client aborted" "pgbench exit $rc: $aborted" '[ "$rc" = 0 ] && [ -z "$aborted" ]'
info "bank: $(grep -E '^tps' "$WORK/bank.out" | head -1 | cut -d'(' -f1)"
info "bank ops: $(q -c "SELECT string_agg(op || ' ' || x, '; ' ORDER BY op) FROM (
        SELECT op, string_agg(outcome || '=' || n, ' ' ORDER BY outcome <> 'ok', outcome) x
          FROM (SELECT op, outcome, count(*) n FROM rel.op_log GROUP BY 1, 2) s GROUP BY op) t")"
info "bank money: $(q -c "SELECT string_agg(format('%s paid in %s, charged %s, wallets %s', currency, paid, charged, wallets), '; ' ORDER BY currency)
      FROM (SELECT b.currency,
                   (SELECT sum(p.amount) FROM billing.payment_records p JOIN rel.bank_accounts x USING (account_id)
                     WHERE x.currency = b.currency AND p.status = 'succeeded') AS paid,
                   (SELECT coalesce(sum(r.captured), 0) FROM billing.reservations r JOIN rel.bank_accounts x USING (account_id)
                     WHERE x.currency = b.currency AND r.status = 'captured')
                 + (SELECT coalesce(sum(u.amount), 0) FROM billing.usage u JOIN rel.bank_accounts x USING (account_id)
                     WHERE x.currency = b.currency AND u.campaign_id IS NULL) AS charged,
                   sum(a.balance) AS wallets
              FROM rel.bank_accounts b JOIN billing.accounts a ON a.id = b.account_id GROUP BY b.currency) t")"
info "bank retries: $(q -c "SELECT format('%s keyed recharges replayed (%s keys), %s keyed holds replayed (%s keys), %s keyed usages',
        (SELECT count(*) - count(DISTINCT (account_id, key)) FROM rel.op_log WHERE op = 'recharge' AND outcome = 'ok' AND key IS NOT NULL),
        (SELECT count(DISTINCT (account_id, key)) FROM rel.op_log WHERE op = 'recharge' AND outcome = 'ok' AND key IS NOT NULL),
        (SELECT count(*) - count(DISTINCT (account_id, key)) FROM rel.op_log WHERE op = 'reserve' AND outcome = 'ok' AND key IS NOT NULL),
        (SELECT count(DISTINCT (account_id, key)) FROM rel.op_log WHERE op = 'reserve' AND outcome = 'ok' AND key IS NOT NULL),
        (SELECT count(*) FROM rel.op_log WHERE op = 'usage' AND outcome = 'ok' AND key IS NOT NULL))")"
invariants "bank"

# --- the due campaigns the faults interrupt ------------------------------------------------------
# NCAMP campaigns over NCAMP/40 INR accounts, scheduled (without a hold) for 2030, so only a
# run_due_campaigns with as_of 2030 executes them: each execution then holds its cost.
NACC=$(( (NCAMP + 39) / 40 ))
if ! out=$(q 2>&1 <<SQL
SET client_min_messages = warning;
INSERT INTO rel.fault_accounts
SELECT billing.create_account('INR', external_ref => 'rel-fault-' || i) FROM generate_series(1, $NACC) i;
SELECT count(billing.apply_recharge(account_id, 5000)) FROM rel.fault_accounts;
SELECT count(billing.schedule_campaign(c.id, timestamptz '2030-01-01 00:00+00' + (c.id % 3600) * interval '1 second',
                                       as_of => '2029-12-31'))
  FROM (SELECT billing.create_campaign(f.account_id, 'sms', 'promotional', 100, as_of => '2029-12-31') AS id
          FROM rel.fault_accounts f, generate_series(1, 40) g
         LIMIT $NCAMP) c;
SQL
); then
    notok "fault set-up" "$out"
fi
BEFORE=$(q -c "SELECT rel.fault_state()")
info "fault campaigns: $BEFORE"
scheduled=$(q -c "SELECT count(*) FROM billing.campaigns
                    WHERE status = 'scheduled' AND account_id IN (SELECT account_id FROM rel.fault_accounts)")
check "fault set-up: $NCAMP due campaigns scheduled" "$BEFORE" '[ "$scheduled" = "$NCAMP" ]'
RUN_DUE="SELECT billing.run_due_campaigns(as_of => '2030-01-02 00:00+00')"

nothing_partial() { # nothing_partial NAME
    local now
    now=$(q -c "SELECT rel.fault_state()" 2>&1)
    check "$1: nothing partial (every campaign still scheduled, no hold)" "before: $BEFORE; after: $now" '[ "$now" = "$BEFORE" ]'
}

# --- 2a. pg_terminate_backend in the middle of run_due_campaigns ---------------------------------
PGAPPNAME=rel_fault_a "$PG_BIN/psql" -X -d "$DB" -c "$RUN_DUE" >"$WORK/a.out" 2>&1 &
bgp=$!; BG_PIDS+=("$bgp")
pid=$(active_backend rel_fault_a run_due_campaigns 30)
if [ -n "$pid" ]; then
    killed=$(qpg -c "SELECT pg_terminate_backend($pid, 10000)")
    wait_bounded "$bgp" 30; rc=$?
    check "a: pg_terminate_backend of run_due_campaigns while active" \
        "terminate returned '$killed', psql exit $rc: $(tr '\n' ' ' <"$WORK/a.out")" \
        '[ "$killed" = t ] && [ "$rc" != 0 ] && grep -q "terminating connection due to administrator command" "$WORK/a.out"'
else
    wait_bounded "$bgp" 1
    notok "a: pg_terminate_backend of run_due_campaigns while active" \
        "never saw it active for 0.3 s: $(tr '\n' ' ' <"$WORK/a.out")"
fi
nothing_partial "a"
invariants "a"

# --- 2b. kill -9 of the backend ---------------------------------------------------------------
PGAPPNAME=rel_fault_b "$PG_BIN/psql" -X -d "$DB" -c "$RUN_DUE" >"$WORK/b.out" 2>&1 &
bgp=$!; BG_PIDS+=("$bgp")
pid=$(active_backend rel_fault_b run_due_campaigns 30)
if [ -n "$pid" ]; then
    kill -9 "$pid"; krc=$?
    wait_bounded "$bgp" 30; rc=$?
    sleep 0.5   # let the postmaster notice and reinitialize before we probe it
    if wait_accepting 60; then up=yes; else up=no; fi
    check "b: kill -9 of run_due_campaigns while active, server back" \
        "kill exit $krc, psql exit $rc, accepting again: $up: $(tr '\n' ' ' <"$WORK/b.out")" \
        '[ "$krc" = 0 ] && [ "$rc" != 0 ] && [ "$up" = yes ]'
else
    wait_bounded "$bgp" 1
    notok "b: kill -9 of run_due_campaigns while active, server back" "never saw it active for 0.3 s"
fi
if accepting; then
    nothing_partial "b"
    invariants "b"
fi

# --- 2c. pg_ctl stop -m immediate during the bank workload --------------------------------------
if accepting; then
    before_ops=$(q -c "SELECT count(*) FROM rel.op_log")
    bank 30 "$WORK/c.out" &
    bgp=$!; BG_PIDS+=("$bgp")
    sleep 3
    seen=$(q -c "SELECT count(*) FROM rel.op_log" 2>&1)
    running=no; kill -0 "$bgp" 2>/dev/null && running=yes
    $AS_PG "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >"$WORK/c.stop" 2>&1; src=$?
    wait_bounded "$bgp" 20
    pg_start; strc=$?
    if wait_accepting 60; then up=yes; else up=no; fi
    check "c: pg_ctl stop -m immediate while pgbench runs, restart" \
        "pgbench running: $running, committed before the stop: $((seen - before_ops)), stop exit $src, start exit $strc, accepting: $up ($(tail -3 "$SERVER_LOG" | tr '\n' ' '))" \
        '[ "$running" = yes ] && [ "$seen" -gt "$before_ops" ] && [ "$src" = 0 ] && [ "$strc" = 0 ] && [ "$up" = yes ]'
    # Until the stop, the workload must have run clean: no SQL error (a deadlock would be one).
    sqlerr=$(grep -E 'ERROR:' "$WORK/c.out" | head -3 | tr '\n' ' ')
    check "c: no SQL error in the workload before the stop" "$sqlerr" '[ -z "$sqlerr" ]'
    if [ "$up" = yes ]; then
        after=$(q -c "SELECT count(*) FROM rel.op_log")
        if [ "$SYNC" = off ]; then
            info "c: synchronous_commit is off: committed transactions may be lost, not checked"
        else
            check "c: every transaction seen committed survives recovery" \
                "$seen operations seen before the stop, $after after recovery" '[ "$after" -ge "$seen" ]'
        fi
        info "c: $((after - before_ops)) operations committed before the crash"
        nothing_partial "c"   # the workload never touches the fault accounts
        invariants "c"
    fi
fi

# --- 2d. statement_timeout and lock_timeout inside a call -----------------------------------------
if accepting; then
    out=$("$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose -c "SET statement_timeout = '100ms'" -c "$RUN_DUE" 2>&1)
    check "d: statement_timeout inside run_due_campaigns is 57014" "$(echo "$out" | tr '\n' ' ')" \
        'grep -q "ERROR:  57014" <<<"$out"'
    nothing_partial "d statement_timeout"

    # Session A holds the row lock of a bank account in an open transaction; session B's calls
    # on that account under lock_timeout = 100ms must fail with 55P03 and change nothing.
    acct=$(q -c "SELECT account_id FROM rel.bank_accounts WHERE idx = 3")
    state0=$(q -c "SELECT rel.account_state($acct)")
    PGAPPNAME=rel_lock_holder "$PG_BIN/psql" -X -q -d "$DB" >"$WORK/d.out" 2>&1 <<SQL &
BEGIN;
SELECT billing.apply_recharge($acct, 100);
SELECT pg_sleep(4);
ROLLBACK;
SQL
    bgp=$!; BG_PIDS+=("$bgp")
    holder=$(active_backend rel_lock_holder pg_sleep 10)
    holding=no
    [ -n "$holder" ] && [ "$(q -c "SELECT count(*) FROM pg_locks
        WHERE pid = $holder AND relation = 'billing.accounts'::regclass" 2>/dev/null)" -gt 0 ] && holding=yes
    out1=$("$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose -c "SET lock_timeout = '100ms'" \
        -c "SELECT billing.reserve_credits($acct, 1)" 2>&1)
    out2=$("$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose -c "SET lock_timeout = '100ms'" \
        -c "SELECT billing.apply_recharge($acct, 150, idempotency_key => 'lock-timeout')" 2>&1)
    out3=$("$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose -c "SET lock_timeout = '100ms'" \
        -c "SELECT billing.record_usage($acct, 'sms', 'promotional', 3)" 2>&1)
    still=no; kill -0 "$bgp" 2>/dev/null && still=yes
    check "d: lock_timeout inside reserve_credits, apply_recharge, record_usage is 55P03" \
        "lock holder active: $holding, still holding after: $still; $(echo "$out1 | $out2 | $out3" | tr '\n' ' ')" \
        '[ "$holding" = yes ] && [ "$still" = yes ] && grep -q "ERROR:  55P03" <<<"$out1" &&
         grep -q "ERROR:  55P03" <<<"$out2" && grep -q "ERROR:  55P03" <<<"$out3"'
    wait_bounded "$bgp" 15
    state1=$(q -c "SELECT rel.account_state($acct)")
    check "d lock_timeout: nothing changed (the holder rolled back, the timed-out calls left nothing)" \
        "before: $state0; after: $state1" '[ "$state0" = "$state1" ]'
    invariants "d"

    # The interrupted campaigns can still run, all of them, once.
    # (run_due_campaigns also executes the bank's campaigns scheduled an hour ahead.)
    ran=$(q -c "$RUN_DUE" 2>&1)
    after=$(q -c "SELECT rel.fault_state()" 2>&1)
    check "after the faults: run_due_campaigns executes all $NCAMP campaigns, each once" "returned $ran; $after" \
        '[ "$ran" -ge "$NCAMP" ] 2>/dev/null && [[ "$after" == "running=$NCAMP holds=$NCAMP "* ]]'
    info "after the run: $after"
    invariants "final"
else
    notok "d" "the server does not accept connections"
fi

info "runtime $((SECONDS - START)) s"
echo "reliability: $PASS ok, $FAIL not ok"
[ "$FAIL" = 0 ]
