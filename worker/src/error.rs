//! What can go wrong with a page, grouped by what the worker does next: retry it in-process
//! (transient), or set it aside on the dead-letter queue (permanent).

pub use common::dead_letter::ErrorClass;

/// Why a page (or a part of it) could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Worth retrying: the database is unreachable, a deadlock, a serialization failure.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help; the page (or record) goes to the dead-letter queue.
    #[error("{}: {message}", class.as_str())]
    Permanent { class: ErrorClass, message: String },
}

impl PageError {
    pub fn permanent(class: ErrorClass, message: impl Into<String>) -> Self {
        PageError::Permanent {
            class,
            message: message.into(),
        }
    }
}

/// SQLSTATEs after which the same statement may well succeed: connection trouble (08),
/// serialization failure and deadlock (40001, 40P01), lack of resources (53), an operator's
/// intervention or a restart (57P01–57P05), lock timeouts (55P03), system errors (58).
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
        || matches!(
            code,
            "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "57P05" | "57014"
        )
}

impl From<tokio_postgres::Error> for PageError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No SQLSTATE: the connection broke or timed out.
            return PageError::Transient(format!("database connection: {e}"));
        };
        let code = db.code().code();
        if is_transient_sqlstate(code) {
            return PageError::Transient(format!("{} (SQLSTATE {code})", db.message()));
        }
        let class = if code.starts_with("42") {
            ErrorClass::Schema
        } else if code.starts_with("22") {
            ErrorClass::Value
        } else {
            ErrorClass::Constraint
        };
        let mut message = format!("{} (SQLSTATE {code})", db.message());
        if let Some(constraint) = db.constraint() {
            message.push_str(&format!(", constraint {constraint}"));
        }
        // "Failing row contains (…)" repeats the whole record, which the dead letter carries
        // anyway; other details (which key, which value) are the useful part of the message.
        if let Some(detail) = db
            .detail()
            .filter(|d| !d.starts_with("Failing row contains"))
        {
            message.push_str(&format!(": {detail}"));
        }
        PageError::Permanent { class, message }
    }
}

impl From<deadpool_postgres::PoolError> for PageError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(pg) => pg.into(),
            other => PageError::Transient(format!("database pool: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        for transient in ["40P01", "40001", "08006", "57P01", "53300"] {
            assert!(is_transient_sqlstate(transient), "{transient}");
        }
        for permanent in ["23514", "22001", "23505", "42P01", "22P02", "22021"] {
            assert!(!is_transient_sqlstate(permanent), "{permanent}");
        }
    }
}
