//! Idempotency keys, scoped per account and operation (Stripe's model): a retry with equal
//! arguments (all but `as_of`) replays the first result and changes nothing; the same key with
//! different arguments is BL006.
//!
//! Always used under the account lock, so two sessions with one key serialize: the second sees
//! the first's row once it commits (READ COMMITTED), or gets a retryable 40001 (REPEATABLE READ).

use crate::db::exec;
use crate::error::{BillingError, Result};
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::Value;

/// Longest key accepted; longer ones are a caller bug (22023).
const MAX_KEY_LEN: usize = 200;

pub struct Key<'a> {
    pub account_id: i64,
    pub operation: &'static str,
    pub key: &'a str,
    /// The request's arguments, as compared on replay.
    pub request: Value,
}

/// Validates a key argument (22023 when empty or over 200 characters).
pub fn check_key(key: Option<String>) -> Result<Option<String>> {
    match key {
        Some(k) if k.is_empty() => Err(BillingError::invalid("idempotency_key must not be empty")),
        Some(k) if k.chars().count() > MAX_KEY_LEN => Err(BillingError::invalid(format!(
            "idempotency_key must be at most {MAX_KEY_LEN} characters"
        ))),
        other => Ok(other),
    }
}

const LOOKUP: &str = "
    SELECT request = $4, result FROM billing.idempotency_keys
     WHERE account_id = $1 AND operation = $2 AND key = $3";

// ON CONFLICT DO NOTHING: under REPEATABLE READ, a key committed by another session after our
// snapshot (possible when the first call did not update the account row, e.g. create_payment)
// makes PostgreSQL raise a retryable 40001 here, where a plain INSERT would raise 23505.
const REMEMBER: &str = "
    INSERT INTO billing.idempotency_keys (account_id, operation, key, request, result)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT DO NOTHING
    RETURNING true";

/// The stored result when this key was used before with the same request; BL006 when it was
/// used with another; None when it is new.
pub fn replay(client: &mut SpiClient<'_>, k: &Key<'_>) -> Result<Option<Value>> {
    let rows = exec(
        client,
        LOOKUP,
        &[
            k.account_id.into(),
            k.operation.into(),
            k.key.into(),
            JsonB(k.request.clone()).into(),
        ],
    )?;
    if rows.is_empty() {
        return Ok(None);
    }
    let row = rows.first();
    if row.get::<bool>(1)? != Some(true) {
        return Err(BillingError::IdempotencyConflict {
            operation: k.operation.to_string(),
            key: k.key.to_string(),
        });
    }
    Ok(row.get::<JsonB>(2)?.map(|j| j.0))
}

/// Stores the first result of a keyed request, in the same transaction as its effect.
pub fn remember(client: &mut SpiClient<'_>, k: &Key<'_>, result: Value) -> Result<()> {
    let stored = exec(
        client,
        REMEMBER,
        &[
            k.account_id.into(),
            k.operation.into(),
            k.key.into(),
            JsonB(k.request.clone()).into(),
            JsonB(result).into(),
        ],
    )?;
    if stored.is_empty() {
        // Unreachable under READ COMMITTED: the key was looked up under the account lock.
        return Err(BillingError::Internal(format!(
            "idempotency key \"{}\" was stored concurrently",
            k.key
        )));
    }
    Ok(())
}

/// The `id` of a replayed result.
pub fn result_id(result: &Value) -> Result<i64> {
    result.get("id").and_then(Value::as_i64).ok_or_else(|| {
        BillingError::Internal(format!("stored idempotent result has no id: {result}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_non_empty_and_bounded() {
        assert_eq!(check_key(None), Ok(None));
        assert_eq!(check_key(Some("k-1".into())), Ok(Some("k-1".into())));
        assert_eq!(
            check_key(Some(String::new())).unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(
            check_key(Some("x".repeat(201))).unwrap_err().sqlstate(),
            "22023"
        );
        assert!(check_key(Some("é".repeat(200))).is_ok());
    }
}
