//! The double-entry ledger: balanced transfers, appended only, and the invariants that can be
//! verified at any time.
//!
//! A transfer is posted by one statement that draws a transfer id, moves the account's cached
//! balance (and reserved, for captures) and inserts every entry; the statement trigger
//! `ledger_entries_balanced` refuses it if the entries do not sum to zero, and the accounts
//! rule `available_not_negative` (trigger `row_invariants`) refuses it if it would overdraw the
//! wallet.

use crate::db::{exec, with_spi};
use crate::error::{BillingError, Result};
use crate::money::Money;
use crate::transition::{self, Table};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AllocatedByPostgres;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// Ledger accounts. `Wallet` is the customer's own; the others are per-currency system
/// accounts, kept as per-customer sub-ledgers (no hot row) and summed on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerAccount {
    Wallet,
    PaymentsClearing,
    TaxPayable,
    Revenue,
    #[allow(dead_code)] // carrier fees are booked by usage and campaigns
    CarrierFeesPayable,
    Receivables,
}

impl LedgerAccount {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerAccount::Wallet => "wallet",
            LedgerAccount::PaymentsClearing => "payments_clearing",
            LedgerAccount::TaxPayable => "tax_payable",
            LedgerAccount::Revenue => "revenue",
            LedgerAccount::CarrierFeesPayable => "carrier_fees_payable",
            LedgerAccount::Receivables => "receivables",
        }
    }
}

/// One movement of money for one customer account, in its currency.
pub struct Transfer<'a> {
    pub account_id: i64,
    pub currency: &'a str,
    pub kind: &'a str,
    pub source: &'a str,
    pub source_id: i64,
    /// Credit-normal legs: > 0 credits the ledger account, < 0 debits it. Zero legs are dropped.
    pub legs: Vec<(LedgerAccount, Decimal)>,
    /// Change to `accounts.reserved` made together with the transfer (a capture frees its hold).
    pub reserved_delta: Decimal,
    pub at: TimestampWithTimeZone,
}

/// The sum of the wallet legs: how the cached balance moves.
pub fn wallet_delta(legs: &[(LedgerAccount, Decimal)]) -> Decimal {
    legs.iter()
        .filter(|(a, _)| *a == LedgerAccount::Wallet)
        .map(|(_, d)| *d)
        .sum()
}

pub fn is_balanced(legs: &[(LedgerAccount, Decimal)]) -> bool {
    legs.iter().map(|(_, d)| *d).sum::<Decimal>().is_zero()
}

const POST: &str = "
    WITH t AS (SELECT nextval('billing.transfer_ids') AS transfer_id),
         w AS (UPDATE billing.accounts
                  SET balance = balance + $6, reserved = reserved + $7
                WHERE id = $1 AND ($6 <> 0 OR $7 <> 0)
                RETURNING id)
    INSERT INTO billing.ledger_entries
           (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id, created_at)
    SELECT $1, t.transfer_id, unnest($8::text[]), $2, unnest($9::numeric[]), $3, $4, $5, $10
      FROM t
    RETURNING transfer_id";

/// A transfer's legs as the statements that post them take them: the ledger accounts' names and
/// the amounts, zero legs dropped, and the wallet's delta. An internal error unless they balance.
pub struct Legs {
    pub names: Vec<String>,
    pub amounts: Vec<Money>,
    pub wallet_delta: Decimal,
}

pub fn legs(kind: &str, legs: Vec<(LedgerAccount, Decimal)>) -> Result<Legs> {
    let legs: Vec<_> = legs.into_iter().filter(|(_, d)| !d.is_zero()).collect();
    if legs.is_empty() || !is_balanced(&legs) {
        return Err(BillingError::Internal(format!(
            "unbalanced transfer for {kind}"
        )));
    }
    Ok(Legs {
        names: legs.iter().map(|(a, _)| a.as_str().to_string()).collect(),
        amounts: legs.iter().map(|(_, d)| Money(*d)).collect(),
        wallet_delta: wallet_delta(&legs),
    })
}

/// Posts a transfer. The caller holds the account lock.
pub fn post(client: &mut SpiClient<'_>, t: Transfer<'_>) -> Result<()> {
    let Legs {
        names,
        amounts,
        wallet_delta,
    } = legs(t.kind, t.legs)?;
    exec(
        client,
        POST,
        &[
            t.account_id.into(),
            t.currency.into(),
            t.kind.into(),
            t.source.into(),
            t.source_id.into(),
            Money(wallet_delta).into(),
            Money(t.reserved_delta).into(),
            names.into(),
            amounts.into(),
            t.at.into(),
        ],
    )?;
    Ok(())
}

// The statement trigger ledger_entries_balanced ----------------------------------------------------

/// A transfer a statement left unbalanced: its id, what its legs sum to, in how many currencies.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbalanced<N> {
    pub transfer_id: i64,
    pub total: N,
    pub currencies: usize,
}

/// The transfer of lowest id among `legs` (transfer id, amount, currency) whose legs do not sum
/// to zero or are in more than one currency. Generic over the number type: the trigger sums
/// PostgreSQL numerics (any size), the tests use `Decimal`.
pub fn first_unbalanced<N>(
    legs: impl IntoIterator<Item = (i64, N, String)>,
    zero: N,
) -> Option<Unbalanced<N>>
where
    N: Clone + PartialEq + std::ops::Add<Output = N>,
{
    let mut transfers: BTreeMap<i64, (N, BTreeSet<String>)> = BTreeMap::new();
    for (transfer_id, amount, currency) in legs {
        let t = transfers
            .entry(transfer_id)
            .or_insert_with(|| (zero.clone(), BTreeSet::new()));
        t.0 = t.0.clone() + amount;
        t.1.insert(currency);
    }
    transfers
        .into_iter()
        .find(|(_, (total, currencies))| *total != zero || currencies.len() > 1)
        .map(|(transfer_id, (total, currencies))| Unbalanced {
            transfer_id,
            total,
            currencies: currencies.len(),
        })
}

// The trigger itself, in a module of its own because of the name `Result`.
mod balanced_trigger {
    use super::*;
    // pg_trigger's expansion names `Result`: the std one, not crate::error's.
    use std::result::Result;

    // Each (account, currency) a statement's legs name, against the account's own currency: a leg
    // must belong to an existing account and be in its currency. This replaces the foreign keys of
    // ledger_entries (one SPI query and a KEY SHARE lock per leg, the lock on the one hot
    // currencies row shared by every charge): one query per statement, no lock, because an
    // account is never deleted and its id and currency never change (triggers on billing.accounts).
    // Names are qualified: a trigger runs under the caller's search_path (direct DML).
    // The account is looked up by a subquery per distinct pair, an index probe of its primary key;
    // OFFSET 0 keeps the planner from turning it into a join (a hash of all accounts).
    const ACCOUNT_CURRENCY: &str =
        "SELECT currency FROM billing.accounts WHERE id OPERATOR(pg_catalog.=) $1";
    const LEG_ACCOUNTS: &str = "
    SELECT account_id, currency, own FROM (
        SELECT t.account_id, t.currency,
               (SELECT a.currency FROM billing.accounts a WHERE a.id OPERATOR(pg_catalog.=) t.account_id) AS own
          FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.text[]))
               AS t(account_id, currency)
        OFFSET 0) x
     WHERE own IS DISTINCT FROM currency
     LIMIT 1";

    /// `billing.check_transfers_balanced()`: AFTER INSERT FOR EACH STATEMENT trigger of
    /// billing.ledger_entries (`REFERENCING NEW TABLE`). Reads the statement's new entries and one
    /// row of billing.accounts per distinct account, locks nothing. 23514 when a transfer does not
    /// sum to zero in one currency or a leg is not in its account's currency; 23503 for a leg of an
    /// unknown account.
    #[pg_trigger(sql = false)]
    fn check_transfers_balanced<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible>
    {
        let mut legs = Vec::new();
        let mut accounts = BTreeSet::new();
        transition::for_each_row(
            trigger,
            Table::New,
            &["transfer_id", "account_id", "currency", "amount"],
            |row| {
                let transfer_id: i64 = transition::get(row[0]).unwrap_or_default();
                let account_id: i64 = transition::get(row[1]).unwrap_or_default();
                let currency: String = transition::get(row[2]).unwrap_or_default();
                let amount: AnyNumeric = transition::get(row[3]).unwrap_or_default();
                accounts.insert((account_id, currency.clone()));
                legs.push((transfer_id, amount, currency));
            },
        );
        if legs.is_empty() {
            return Ok(None); // an INSERT ... SELECT that inserted nothing
        }
        if let Some(bad) = first_unbalanced(legs, AnyNumeric::from(0)) {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                format!(
                    "ledger transfer {} is unbalanced: entries sum to {} in {} currencies",
                    bad.transfer_id, bad.total, bad.currencies
                )
            );
        }
        // A one-statement charge has just updated the account in its currency: nothing to read.
        if accounts.len() == 1
            && accounts
                .first()
                .is_some_and(|(id, leg)| crate::events::saw_account_in(*id, leg))
        {
            return Ok(None);
        }
        let wrong = with_spi(|c| {
            if accounts.len() == 1 {
                // the usual statement: one transfer of one account, an index probe
                let (id, leg) = accounts.pop_first().expect("one account");
                let own = crate::db::one::<String>(exec(c, ACCOUNT_CURRENCY, &[id.into()])?)?;
                return Ok((own.as_deref() != Some(leg.as_str())).then_some((id, leg, own)));
            }
            let (ids, currencies): (Vec<i64>, Vec<String>) = accounts.into_iter().unzip();
            let rows = exec(c, LEG_ACCOUNTS, &[ids.into(), currencies.into()])?;
            match rows.into_iter().next() {
                Some(r) => Ok(Some((
                    r.get::<i64>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?,
                ))),
                None => Ok(None),
            }
        })
        .unwrap_or_else(|e| error!("billing: checking the accounts of ledger legs: {e}"));
        let (code, message, detail) = match wrong {
            None => return Ok(None),
            Some((id, _, None)) => (
                PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION,
                "insert or update on table \"ledger_entries\" violates foreign key constraint \"ledger_entries_account_id_fkey\"",
                format!("Key (account_id)=({id}) is not present in table \"accounts\"."),
            ),
            Some((id, leg, Some(own))) => (
                PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                "new row for relation \"ledger_entries\" violates check constraint \"ledger_entries_in_account_currency\"",
                format!("A leg in {leg} for account {id}, whose currency is {own}."),
            ),
        };
        ereport!(ERROR, code, message, detail);
    }
    crate::invariants::trigger_symbol!(
        billing_check_transfers_balanced,
        pg_finfo_billing_check_transfers_balanced,
        check_transfers_balanced_wrapper
    );
}

// verify_ledger ------------------------------------------------------------------------------------

/// Each check selects one line per offending row; no row means the invariant holds.
const CHECKS: &[(&str, &str)] = &[
    (
        "wallet_balances_match_entries",
        "SELECT format('account %s: balance %s, wallet entries %s', a.id, a.balance, coalesce(e.total, 0))
           FROM billing.accounts a
           LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing.ledger_entries
                       WHERE ledger_account = 'wallet' GROUP BY account_id) e ON e.account_id = a.id
          WHERE a.balance <> coalesce(e.total, 0) ORDER BY a.id",
    ),
    (
        "reserved_matches_pending_holds",
        "SELECT format('account %s: reserved %s, pending holds %s', a.id, a.reserved, coalesce(r.total, 0))
           FROM billing.accounts a
           LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing.reservations
                       WHERE status = 'pending' GROUP BY account_id) r ON r.account_id = a.id
          WHERE a.reserved <> coalesce(r.total, 0) ORDER BY a.id",
    ),
    (
        "entries_sum_to_zero_per_currency",
        "SELECT format('%s: entries sum to %s', currency, sum(amount))
           FROM billing.ledger_entries GROUP BY currency HAVING sum(amount) <> 0 ORDER BY currency",
    ),
    (
        "transfers_balanced",
        "SELECT format('transfer %s: sums to %s in %s currencies', transfer_id, sum(amount), count(DISTINCT currency))
           FROM billing.ledger_entries GROUP BY transfer_id
         HAVING sum(amount) <> 0 OR count(DISTINCT currency) > 1 ORDER BY transfer_id",
    ),
    (
        "entries_in_account_currency",
        "SELECT format('entry %s: %s on a %s account', e.id, e.currency, a.currency)
           FROM billing.ledger_entries e JOIN billing.accounts a ON a.id = e.account_id
          WHERE e.currency <> a.currency ORDER BY e.id",
    ),
    (
        "no_balance_below_overdraft_limit",
        "SELECT format('account %s: balance %s, overdraft limit %s, reserved %s', id, balance, overdraft_limit, reserved)
           FROM billing.accounts
          WHERE balance < -overdraft_limit OR balance - reserved + overdraft_limit < 0 ORDER BY id",
    ),
        (
        "receivables_match_unpaid_invoices",
        "SELECT format('account %s: receivables %s, unpaid invoices %s', a.id, coalesce(-r.total, 0), coalesce(i.total, 0))
           FROM billing.accounts a
           LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing.ledger_entries
                       WHERE ledger_account = 'receivables' GROUP BY account_id) r ON r.account_id = a.id
           LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing.invoice_records
                       WHERE status <> 'paid' GROUP BY account_id) i ON i.account_id = a.id
          WHERE coalesce(-r.total, 0) <> coalesce(i.total, 0) ORDER BY a.id",
    ),
        (
        "usage_rollup_matches_usage",
        "SELECT format('account %s %s %s %s: rollup %s/%s, usage %s/%s', coalesce(d.account_id, u.account_id),
                       coalesce(d.day, u.day), coalesce(d.channel, u.channel), coalesce(d.category, u.category),
                       d.units, d.amount, u.units, u.amount)
           FROM billing.usage_daily d
           FULL JOIN (SELECT account_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, channel, category,
                             sum(units) AS units, sum(amount) AS amount
                        FROM billing.usage GROUP BY 1, 2, 3, 4) u
             ON (u.account_id, u.day, u.channel, u.category) = (d.account_id, d.day, d.channel, d.category)
          WHERE coalesce(d.units, 0) <> coalesce(u.units, 0) OR coalesce(d.amount, 0) <> coalesce(u.amount, 0)
          ORDER BY 1",
    ),
    (
        "payments_credited_once",
        "SELECT format('payment %s (%s): %s credit transfers', p.id, p.status, count(DISTINCT e.transfer_id))
           FROM billing.payment_records p
           LEFT JOIN billing.ledger_entries e
                  ON e.account_id = p.account_id AND e.source = 'payment' AND e.source_id = p.id
          WHERE p.kind IN ('recharge', 'auto_recharge')
          GROUP BY p.id, p.status
         HAVING count(DISTINCT e.transfer_id) <> CASE WHEN p.status = 'succeeded' THEN 1 ELSE 0 END
          ORDER BY p.id",
    ),
    (
        "holds_resolved_once",
        "SELECT format('reservation %s (%s): %s capture transfers', r.id, r.status, count(DISTINCT e.transfer_id))
           FROM billing.reservations r
           LEFT JOIN billing.ledger_entries e
                  ON e.account_id = r.account_id AND e.source = 'reservation' AND e.source_id = r.id
          GROUP BY r.id, r.status
         HAVING count(DISTINCT e.transfer_id) <> CASE WHEN r.status = 'captured' THEN 1 ELSE 0 END
          ORDER BY r.id",
    ),
];

/// How many offenders a check names in its detail.
const DETAIL_LIMIT: usize = 5;

/// `billing.verify_ledger() → TABLE(check_name, ok, detail)`
/// Checks every invariant of the ledger over all data; takes no locks (one snapshot per check).
/// Read-only and repeatable. `detail` names up to five offenders.
#[pg_extern(stable)]
fn verify_ledger() -> TableIterator<
    'static,
    (
        name!(check_name, String),
        name!(ok, bool),
        name!(detail, String),
    ),
> {
    let rows = crate::boundary::standard(|| {
        with_spi(|c| {
            let mut out = Vec::with_capacity(CHECKS.len());
            for (name, sql) in CHECKS {
                let mut offenders = Vec::new();
                for row in exec(c, sql, &[])? {
                    offenders.push(row.get::<String>(1)?.unwrap_or_default());
                }
                out.push(check_row(name, &offenders));
            }
            Ok(out)
        })
    });
    TableIterator::new(rows)
}

fn check_row(name: &str, offenders: &[String]) -> (String, bool, String) {
    if offenders.is_empty() {
        return (name.to_string(), true, "ok".to_string());
    }
    let shown: Vec<&str> = offenders
        .iter()
        .take(DETAIL_LIMIT)
        .map(String::as_str)
        .collect();
    let more = offenders.len().saturating_sub(DETAIL_LIMIT);
    let tail = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    (
        name.to_string(),
        false,
        format!("{}{}", shown.join("; "), tail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;
    use LedgerAccount::*;

    #[test]
    fn a_recharge_with_gst_balances() {
        let legs = [
            (Wallet, dec("1000")),
            (TaxPayable, dec("180")),
            (PaymentsClearing, dec("-1180")),
        ];
        assert!(is_balanced(&legs));
        assert_eq!(wallet_delta(&legs), dec("1000"));
    }

    #[test]
    fn an_unbalanced_transfer_is_caught() {
        assert!(!is_balanced(&[
            (Wallet, dec("-10")),
            (Revenue, dec("9.99"))
        ]));
    }

    #[test]
    fn the_statement_check_finds_the_first_unbalanced_transfer() {
        let leg = |t, a: &str, c: &str| (t, dec(a), c.to_string());
        let balanced = [
            leg(1, "100", "INR"),
            leg(1, "-100", "INR"),
            leg(2, "0.01", "USD"),
            leg(2, "-0.01", "USD"),
        ];
        assert_eq!(first_unbalanced(balanced, Decimal::ZERO), None);
        assert_eq!(first_unbalanced(Vec::new(), Decimal::ZERO), None);
        // 7 balances, 3 is a paisa short, 9 is off too: the lowest id is named
        let off_by_a_paisa = [
            leg(9, "1", "INR"),
            leg(7, "10", "INR"),
            leg(3, "-10", "INR"),
            leg(3, "9.99", "INR"),
            leg(7, "-10", "INR"),
        ];
        assert_eq!(
            first_unbalanced(off_by_a_paisa, Decimal::ZERO),
            Some(Unbalanced {
                transfer_id: 3,
                total: dec("-0.01"),
                currencies: 1
            })
        );
        let two_currencies = [leg(5, "10", "INR"), leg(5, "-10", "USD")];
        assert_eq!(
            first_unbalanced(two_currencies, Decimal::ZERO),
            Some(Unbalanced {
                transfer_id: 5,
                total: Decimal::ZERO,
                currencies: 2
            })
        );
    }

    #[test]
    fn check_detail_names_at_most_five_offenders() {
        let offenders: Vec<String> = (1..=7).map(|i| format!("account {i}")).collect();
        let (_, ok, detail) = check_row("x", &offenders);
        assert!(!ok);
        assert!(detail.starts_with("account 1; account 2"));
        assert!(detail.ends_with("; and 2 more"));
        assert_eq!(check_row("x", &[]), ("x".into(), true, "ok".into()));
    }
}
