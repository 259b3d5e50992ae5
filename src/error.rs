//! The one domain error type of the extension, and its SQLSTATEs.
//!
//! Every API function returns `Result<_, BillingError>`; the boundary (`boundary.rs`) turns an
//! `Err` into a PostgreSQL error with the SQLSTATE below, once, after all Rust work is done.

use rust_decimal::Decimal;

pub type Result<T> = std::result::Result<T, BillingError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// BL001: available credits do not cover the amount.
    #[error("insufficient credits: required {required}, available {available}, shortfall {}", required - available)]
    InsufficientCredits {
        required: Decimal,
        available: Decimal,
    },

    /// BL002: a recharge amount outside its currency's bounds (inclusive).
    #[error("recharge amount {amount} {currency} is out of bounds: minimum {min}, maximum {max}")]
    RechargeOutOfBounds {
        amount: Decimal,
        currency: String,
        min: Decimal,
        max: Decimal,
    },

    /// BL003: the object's state does not allow the operation.
    #[error("{what} is {state}: cannot {operation}")]
    InvalidState {
        what: String,
        state: String,
        operation: String,
    },

    /// BL004: the account may not spend now (or, once deleted, take payments).
    #[error("account {account_id} may not {action}: dunning stage is {stage}")]
    ServiceBlocked {
        account_id: i64,
        stage: String,
        action: &'static str,
    },

    /// BL005: objects of different currencies were combined.
    #[allow(dead_code)] // part of the contract's error set; no call of the money core combines currencies
    #[error("currency mismatch: {0}")]
    CurrencyMismatch(String),

    /// BL006: an idempotency key reused with different parameters.
    #[error(
        "idempotency key \"{key}\" was already used for {operation} with different parameters"
    )]
    IdempotencyConflict { operation: String, key: String },

    /// 22023: malformed input.
    #[error("{0}")]
    InvalidParameter(String),

    /// P0002: unknown id.
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },

    /// 55000: something the call needs is not set up (pg_cron for schedule_jobs).
    #[error("{message}")]
    Prerequisite { message: String, hint: String },

    /// XX000: a bug or an SPI failure that is not the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BillingError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        BillingError::InvalidParameter(msg.into())
    }

    pub fn invalid_state(
        what: impl Into<String>,
        state: impl Into<String>,
        operation: &str,
    ) -> Self {
        BillingError::InvalidState {
            what: what.into(),
            state: state.into(),
            operation: operation.to_string(),
        }
    }

    /// The five-character SQLSTATE the caller sees.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            BillingError::InsufficientCredits { .. } => "BL001",
            BillingError::RechargeOutOfBounds { .. } => "BL002",
            BillingError::InvalidState { .. } => "BL003",
            BillingError::ServiceBlocked { .. } => "BL004",
            BillingError::CurrencyMismatch(_) => "BL005",
            BillingError::IdempotencyConflict { .. } => "BL006",
            BillingError::InvalidParameter(_) => "22023",
            BillingError::NotFound { .. } => "P0002",
            BillingError::Prerequisite { .. } => "55000",
            BillingError::Internal(_) => "XX000",
        }
    }

    /// A hint shown under the message, where one helps the caller act.
    pub fn hint(&self) -> Option<String> {
        match self {
            BillingError::InsufficientCredits { .. } => {
                Some("Recharge the account or release holds, then retry.".into())
            }
            BillingError::ServiceBlocked { stage, .. } if stage != "deleted" => {
                Some("Pay the overdue invoices; service is restored at once.".into())
            }
            BillingError::IdempotencyConflict { .. } => {
                Some("Use a new idempotency key for a different request.".into())
            }
            BillingError::Prerequisite { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }

    /// SQLSTATE packed the way PostgreSQL's MAKE_SQLSTATE does.
    pub fn sqlstate_code(&self) -> i32 {
        pack_sqlstate(self.sqlstate())
    }
}

/// The five characters of a packed SQLSTATE (PostgreSQL's unpack_sql_state).
pub fn unpack_sqlstate(code: i32) -> String {
    (0..5)
        .map(|i| (((code >> (6 * i)) & 0x3f) as u8 + b'0') as char)
        .collect()
}

/// PostgreSQL's MAKE_SQLSTATE: five 6-bit characters.
pub fn pack_sqlstate(code: &str) -> i32 {
    code.bytes()
        .enumerate()
        .map(|(i, c)| ((c.wrapping_sub(b'0') & 0x3f) as i32) << (6 * i))
        .sum()
}

impl From<pgrx::spi::SpiError> for BillingError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        BillingError::Internal(format!("SPI: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn sqlstates_pack_like_postgres() {
        // ERRCODE_INVALID_PARAMETER_VALUE is MAKE_SQLSTATE('2','2','0','2','3') = 0x804082 in PG.
        assert_eq!(pack_sqlstate("22023"), 2 | (2 << 6) | (2 << 18) | (3 << 24));
        assert_eq!(pack_sqlstate("P0002"), 32 | (2 << 24));
        assert_ne!(pack_sqlstate("BL001"), pack_sqlstate("BL002"));
        for code in ["22023", "P0002", "BL001", "57014", "40P01", "XX000"] {
            assert_eq!(unpack_sqlstate(pack_sqlstate(code)), code);
        }
    }

    #[test]
    fn insufficient_credits_message_gives_the_numbers() {
        let e = BillingError::InsufficientCredits {
            required: dec("150.00"),
            available: dec("100.50"),
        };
        assert_eq!(e.sqlstate(), "BL001");
        assert_eq!(
            e.to_string(),
            "insufficient credits: required 150.00, available 100.50, shortfall 49.50"
        );
    }

    #[test]
    fn every_variant_has_a_documented_sqlstate() {
        let all = [
            BillingError::InsufficientCredits {
                required: dec("1"),
                available: dec("0"),
            },
            BillingError::RechargeOutOfBounds {
                amount: dec("1"),
                currency: "INR".into(),
                min: dec("100"),
                max: dec("100000"),
            },
            BillingError::invalid_state("hold 1", "released", "capture"),
            BillingError::ServiceBlocked {
                account_id: 1,
                stage: "suspended".into(),
                action: "spend",
            },
            BillingError::CurrencyMismatch("x".into()),
            BillingError::IdempotencyConflict {
                operation: "x".into(),
                key: "k".into(),
            },
            BillingError::invalid("x"),
            BillingError::NotFound {
                what: "account",
                id: 1,
            },
        ];
        let codes: Vec<_> = all.iter().map(|e| e.sqlstate()).collect();
        assert_eq!(
            codes,
            ["BL001", "BL002", "BL003", "BL004", "BL005", "BL006", "22023", "P0002"]
        );
    }
}
