//! Recharges and payments: bounds per currency (inclusive), tax (GST) computed when the payment
//! is created, pending payments confirmed (credited exactly once), failed or cancelled.

use crate::accounts::{lock, owner_of, Account};
use crate::boundary::{Args, Ret};
use crate::db::{exec, insert_id, one, with_spi};
use crate::error::{BillingError, Result};
use crate::events::{emit, num};
use crate::idempotency::{check_key, remember, replay, result_id, Key};
use crate::ledger::{self, LedgerAccount, Transfer};
use crate::money::{self, Money, Sign};
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::json;

const METHOD_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM billing.payment_methods WHERE code = $1)";

pub fn check_method(client: &mut SpiClient<'_>, method: &str) -> Result<()> {
    if one::<bool>(exec(client, METHOD_EXISTS, &[method.into()])?)? == Some(true) {
        Ok(())
    } else {
        Err(BillingError::invalid(format!(
            "unknown payment method {method}"
        )))
    }
}

/// Refuses money into an account that can no longer use it (stage `deleted`): BL004.
fn ensure_may_recharge(acct: &Account) -> Result<()> {
    if acct.may_recharge {
        Ok(())
    } else {
        Err(BillingError::ServiceBlocked {
            account_id: acct.id,
            stage: acct.stage.clone(),
            action: "take payments",
        })
    }
}

const INSERT_PAYMENT: &str = "
    INSERT INTO billing.payment_records
           (account_id, kind, amount, tax, currency, method, status, created_at, settled_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 'pending' THEN NULL ELSE $8 END)
    RETURNING id";

/// Creates a recharge payment (`pending`, or `succeeded` and credited at once) on a locked
/// account, after its bounds and tax. Shared with auto-recharge.
pub fn new_recharge(
    client: &mut SpiClient<'_>,
    acct: &Account,
    kind: &str,
    amount: Decimal,
    method: &str,
    succeeded: bool,
    at: TimestampWithTimeZone,
) -> Result<i64> {
    ensure_may_recharge(acct)?;
    acct.check_recharge(amount)?;
    let tax = money::tax(amount, acct.tax_rate, acct.minor_units);
    let status = if succeeded { "succeeded" } else { "pending" };
    let id = insert_id(
        client,
        INSERT_PAYMENT,
        &[
            acct.id.into(),
            kind.into(),
            Money(amount).into(),
            Money(tax).into(),
            acct.currency.as_str().into(),
            method.into(),
            status.into(),
            at.into(),
        ],
    )?;
    if succeeded {
        credit(client, acct, id, kind, amount, tax, at)?;
    }
    Ok(id)
}

/// Credits a succeeded recharge: wallet +amount, tax payable +tax, cash received -(amount+tax).
fn credit(
    client: &mut SpiClient<'_>,
    acct: &Account,
    payment_id: i64,
    kind: &str,
    amount: Decimal,
    tax: Decimal,
    at: TimestampWithTimeZone,
) -> Result<()> {
    ledger::post(
        client,
        Transfer {
            account_id: acct.id,
            currency: &acct.currency,
            kind,
            source: "payment",
            source_id: payment_id,
            legs: vec![
                (LedgerAccount::Wallet, amount),
                (LedgerAccount::TaxPayable, tax),
                (LedgerAccount::PaymentsClearing, -(amount + tax)),
            ],
            reserved_delta: Decimal::ZERO,
            at,
        },
    )?;
    emit(
        client,
        acct.id,
        "payment_succeeded",
        json!({
            "payment_id": payment_id,
            "kind": kind,
            "amount": num(amount),
            "tax": num(tax),
            "total": num(amount + tax),
            "currency": acct.currency,
        }),
        at,
    )
}

/// The body shared by `apply_recharge` (succeeded at once) and `create_payment` (pending).
fn recharge(a: &Args, operation: &'static str, succeeded: bool) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let amount = a.amount(1, "amount", Sign::Positive)?;
    let method = a.text(2, "method")?;
    let key = check_key(a.opt_text(3))?;
    let as_of = a.ts(4, "as_of")?;
    let id = with_spi(|c| {
        check_method(c, &method)?;
        let acct = lock(c, account_id)?;
        let key = key.as_deref().map(|key| Key {
            account_id,
            operation,
            key,
            request: json!({ "amount": num(amount), "method": method }),
        });
        if let Some(k) = &key {
            if let Some(first) = replay(c, k)? {
                return result_id(&first);
            }
        }
        let id = new_recharge(c, &acct, "recharge", amount, &method, succeeded, as_of)?;
        if let Some(k) = &key {
            remember(c, k, json!({ "id": id }))?;
        }
        Ok(id)
    })?;
    Ok(Ret::of(id))
}

/// `billing.apply_recharge(account_id, amount, method DEFAULT 'card', idempotency_key DEFAULT NULL,
/// as_of DEFAULT now()) → bigint` (payment id)
/// A recharge whose payment already succeeded: credits `amount` at once and records tax
/// `round(amount × tax_rate, minor_units)` on the payment. Locks the account. BL002 outside the
/// currency's bounds, 22023 for a malformed amount (or finer than the currency's minor unit) or
/// an unknown method, P0002 for an unknown account, BL004 for a deleted account. Idempotent on
/// the key (BL006 when reused with another amount or method).
fn apply_recharge(a: &Args) -> Result<Ret> {
    recharge(a, "apply_recharge", true)
}
sql_function!(
    billing_apply_recharge,
    pg_finfo_billing_apply_recharge,
    apply_recharge
);

/// `billing.create_payment(account_id, amount, method DEFAULT 'card', idempotency_key DEFAULT NULL,
/// as_of DEFAULT now()) → bigint`
/// A `pending` recharge: bounds and tax are fixed now; nothing is credited until
/// `confirm_payment`. Locks, raises and is idempotent as `apply_recharge`.
fn create_payment(a: &Args) -> Result<Ret> {
    recharge(a, "create_payment", false)
}
sql_function!(
    billing_create_payment,
    pg_finfo_billing_create_payment,
    create_payment
);

const OWNER: &str = "SELECT account_id FROM billing.payment_records WHERE id = $1";

const LOCK_PAYMENT: &str = "
    SELECT status, kind, amount, tax FROM billing.payment_records
     WHERE account_id = $1 AND id = $2 FOR UPDATE";

struct Payment {
    id: i64,
    status: String,
    kind: String,
    amount: Decimal,
    tax: Decimal,
}

/// Locks the account, then the payment (the fixed order).
fn lock_payment(client: &mut SpiClient<'_>, id: i64) -> Result<(Account, Payment)> {
    let account_id = owner_of(client, OWNER, "payment", id)?;
    let acct = lock(client, account_id)?;
    let rows = exec(client, LOCK_PAYMENT, &[account_id.into(), id.into()])?;
    let r = rows.first();
    let p = Payment {
        id,
        status: r.get::<String>(1)?.unwrap_or_default(),
        kind: r.get::<String>(2)?.unwrap_or_default(),
        amount: r.get::<Money>(3)?.map(|m| m.0).unwrap_or_default(),
        tax: r.get::<Money>(4)?.map(|m| m.0).unwrap_or_default(),
    };
    Ok((acct, p))
}

/// What a settling call does with a payment in a given status: settle it, answer again with
/// the status it already reached (a retry), or refuse (BL003).
#[derive(Debug, PartialEq, Eq)]
pub enum Settle {
    Apply,
    AlreadyDone,
}

pub fn settle_decision(id: i64, status: &str, target: &str, operation: &str) -> Result<Settle> {
    match status {
        "pending" => Ok(Settle::Apply),
        s if s == target => Ok(Settle::AlreadyDone),
        s => Err(BillingError::invalid_state(
            format!("payment {id}"),
            s,
            operation,
        )),
    }
}

const SETTLE: &str = "
    UPDATE billing.payment_records
       SET status = $3, settled_at = $4,
           external_ref = coalesce($5, external_ref), failure_reason = $6
     WHERE account_id = $1 AND id = $2";

fn settle(
    client: &mut SpiClient<'_>,
    acct: &Account,
    p: &Payment,
    status: &str,
    at: TimestampWithTimeZone,
    external_ref: Option<&str>,
    reason: Option<&str>,
) -> Result<()> {
    exec(
        client,
        SETTLE,
        &[
            acct.id.into(),
            p.id.into(),
            status.into(),
            at.into(),
            external_ref.into(),
            reason.into(),
        ],
    )?;
    Ok(())
}

/// `billing.confirm_payment(payment_id, external_ref DEFAULT NULL, as_of DEFAULT now()) → text`
/// `pending → succeeded`, credits the balance (once). Locks the account, then the payment.
/// Idempotent: confirming a succeeded payment returns `succeeded` and credits nothing. BL003 for
/// a failed or cancelled payment, P0002 for an unknown id.
fn confirm_payment(a: &Args) -> Result<Ret> {
    let id = a.id(0, "payment_id")?;
    let external_ref = a.opt_text(1);
    let as_of = a.ts(2, "as_of")?;
    with_spi(|c| {
        let (acct, p) = lock_payment(c, id)?;
        if settle_decision(id, &p.status, "succeeded", "confirm")? == Settle::Apply {
            ensure_may_recharge(&acct)?;
            settle(
                c,
                &acct,
                &p,
                "succeeded",
                as_of,
                external_ref.as_deref(),
                None,
            )?;
            credit(c, &acct, id, &p.kind, p.amount, p.tax, as_of)?;
        }
        Ok(())
    })?;
    Ok(Ret::of("succeeded"))
}
sql_function!(
    billing_confirm_payment,
    pg_finfo_billing_confirm_payment,
    confirm_payment
);

/// `billing.fail_payment(payment_id, reason DEFAULT NULL, as_of DEFAULT now()) → text`
/// `pending → failed` (event `payment_failed`). Locks the account, then the payment. Idempotent
/// on a failed payment; BL003 for a succeeded or cancelled one; P0002 for an unknown id.
fn fail_payment(a: &Args) -> Result<Ret> {
    let id = a.id(0, "payment_id")?;
    let reason = a.opt_text(1);
    let as_of = a.ts(2, "as_of")?;
    with_spi(|c| {
        let (acct, p) = lock_payment(c, id)?;
        if settle_decision(id, &p.status, "failed", "fail")? == Settle::Apply {
            settle(c, &acct, &p, "failed", as_of, None, reason.as_deref())?;
            let payload = json!({ "payment_id": id, "kind": p.kind, "amount": num(p.amount), "reason": reason });
            emit(c, acct.id, "payment_failed", payload, as_of)?;
            if p.kind == "auto_recharge" {
                crate::autorecharge::suspend(c, acct.id, id, as_of)?;
            }
        }
        Ok(())
    })?;
    Ok(Ret::of("failed"))
}
sql_function!(
    billing_fail_payment,
    pg_finfo_billing_fail_payment,
    fail_payment
);

/// `billing.cancel_payment(payment_id, as_of DEFAULT now()) → text`
/// `pending → cancelled` (event `payment_cancelled`). Locks the account, then the payment.
/// Idempotent on a cancelled payment; BL003 for a succeeded or failed one; P0002 for an unknown id.
fn cancel_payment(a: &Args) -> Result<Ret> {
    let id = a.id(0, "payment_id")?;
    let as_of = a.ts(1, "as_of")?;
    with_spi(|c| {
        let (acct, p) = lock_payment(c, id)?;
        if settle_decision(id, &p.status, "cancelled", "cancel")? == Settle::Apply {
            settle(c, &acct, &p, "cancelled", as_of, None, None)?;
            let payload = json!({ "payment_id": id, "kind": p.kind, "amount": num(p.amount) });
            emit(c, acct.id, "payment_cancelled", payload, as_of)?;
        }
        Ok(())
    })?;
    Ok(Ret::of("cancelled"))
}
sql_function!(
    billing_cancel_payment,
    pg_finfo_billing_cancel_payment,
    cancel_payment
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_is_idempotent_towards_its_own_target_only() {
        assert_eq!(
            settle_decision(1, "pending", "succeeded", "confirm"),
            Ok(Settle::Apply)
        );
        assert_eq!(
            settle_decision(1, "succeeded", "succeeded", "confirm"),
            Ok(Settle::AlreadyDone)
        );
        assert_eq!(
            settle_decision(1, "failed", "failed", "fail"),
            Ok(Settle::AlreadyDone)
        );
        for (status, target, op) in [
            ("failed", "succeeded", "confirm"),
            ("cancelled", "succeeded", "confirm"),
            ("succeeded", "failed", "fail"),
            ("succeeded", "cancelled", "cancel"),
            ("failed", "cancelled", "cancel"),
        ] {
            let e = settle_decision(3, status, target, op).unwrap_err();
            assert_eq!(e.sqlstate(), "BL003");
            assert_eq!(e.to_string(), format!("payment 3 is {status}: cannot {op}"));
        }
    }
}
