//! The database URL, which may carry a password.
//!
//! A PostgreSQL URL usually embeds credentials (`postgres://user:secret@host/db`), and URLs end up
//! in logs, error messages and `Debug` dumps of configuration. [`DatabaseUrl`] keeps the full text
//! for connecting but prints the password as `***` everywhere else.

use std::fmt;

use crate::error::StoreError;

/// Which SQL dialect a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (a file, opened in WAL mode). The default for a single instance.
    Sqlite,
    /// PostgreSQL, for several instances behind a load balancer.
    Postgres,
}

/// A database URL (`sqlite://path?mode=rwc` or `postgres://…`) whose `Debug` and `Display`
/// hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The full URL, password included; only handed to the driver.
    raw: String,
    /// The dialect, decided once from the scheme.
    backend: Backend,
}

impl DatabaseUrl {
    /// Parses the scheme; anything but `sqlite:` and `postgres:`/`postgresql:` is refused.
    pub fn parse(raw: impl Into<String>) -> Result<Self, StoreError> {
        let raw = raw.into();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl { url: redact(&raw) });
        };
        Ok(Self { raw, backend })
    }

    /// A SQLite URL for a file path, created if missing.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self {
            raw: format!("sqlite://{}?mode=rwc", path.display()),
            backend: Backend::Sqlite,
        }
    }

    /// A SQLite file of its own beside this SQLite database: the same path with `suffix`
    /// appended (`/var/lib/dingsync/dingsync.db` → `…/dingsync.db-budget`, like SQLite's own
    /// `-wal` and `-shm`), created if missing. `None` for PostgreSQL and for an in-memory
    /// database (no other process can open it, so there is nothing to share beside it).
    pub fn sqlite_sidecar(&self, suffix: &str) -> Option<Self> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = self.raw.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
            return None;
        }
        Some(Self {
            raw: format!("sqlite://{path}{suffix}?mode=rwc"),
            backend: Backend::Sqlite,
        })
    }

    /// The dialect.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The full URL including the password. Only for handing to a driver.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The same server with another database name (PostgreSQL), keeping credentials and query.
    /// Used by tests and tools that create a database per run.
    pub fn with_database(&self, name: &str) -> Self {
        let (before_query, query) = match self.raw.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.raw.as_str(), None),
        };
        // The path starts at the first '/' after "scheme://authority".
        let authority_start = before_query.find("://").map_or(0, |i| i + 3);
        let base = match before_query[authority_start..].find('/') {
            Some(i) => &before_query[..authority_start + i],
            None => before_query,
        };
        let mut raw = format!("{base}/{name}");
        if let Some(q) = query {
            raw.push('?');
            raw.push_str(q);
        }
        Self {
            raw,
            backend: self.backend,
        }
    }

    /// Creates the database this URL names on its server (PostgreSQL; for SQLite, the file).
    /// For tools that make a throwaway database per run, such as the bench.
    pub async fn create_database(&self) -> Result<(), StoreError> {
        use sqlx::migrate::MigrateDatabase as _;
        sqlx::any::install_default_drivers();
        sqlx::Any::create_database(&self.raw).await?;
        Ok(())
    }

    /// Drops the database this URL names, disconnecting its other sessions first (PostgreSQL;
    /// for SQLite, deletes the file). The counterpart of [`DatabaseUrl::create_database`].
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        use sqlx::migrate::MigrateDatabase as _;
        sqlx::any::install_default_drivers();
        sqlx::Any::force_drop_database(&self.raw).await?;
        Ok(())
    }
}

/// Replaces the password in `scheme://user:password@host…` with `***`.
fn redact(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _password)) => format!("{}{user}:***{}", &raw[..scheme_end], &rest[at..]),
            None => raw.to_owned(),
        },
        None => raw.to_owned(),
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&redact(&self.raw))
            .finish()
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_sidecar_sits_beside_the_file() {
        let side = |raw: &str| {
            DatabaseUrl::parse(raw)
                .expect("url")
                .sqlite_sidecar("-budget")
                .map(|u| u.expose().to_owned())
        };
        assert_eq!(
            side("sqlite:///var/lib/d.db?mode=rwc").as_deref(),
            Some("sqlite:///var/lib/d.db-budget?mode=rwc")
        );
        assert_eq!(
            side("sqlite://d.db").as_deref(),
            Some("sqlite://d.db-budget?mode=rwc")
        );
        assert_eq!(
            side("sqlite:d.db").as_deref(),
            Some("sqlite://d.db-budget?mode=rwc")
        );
        assert_eq!(side("sqlite::memory:"), None);
        assert_eq!(side("sqlite://x?mode=memory"), None);
        assert_eq!(side("postgres://u:p@h/db"), None);
    }

    #[test]
    fn password_never_printed() {
        let url =
            DatabaseUrl::parse("postgres://app:s3cr3t@db.local:5432/dingsync?sslmode=require")
                .unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("postgres://app:***@db.local:5432/dingsync?sslmode=require"));
        assert_eq!(url.backend(), Backend::Postgres);
        assert!(url.expose().contains("s3cr3t"));
    }

    #[test]
    fn password_with_at_sign_is_hidden() {
        let url = DatabaseUrl::parse("postgres://app:p@ss@db/x").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db/x");
    }

    #[test]
    fn urls_without_password_print_unchanged() {
        for raw in [
            "sqlite:///tmp/x.db?mode=rwc",
            "postgres://postgres@127.0.0.1:5/postgres",
        ] {
            assert_eq!(DatabaseUrl::parse(raw).unwrap().to_string(), raw);
        }
    }

    #[test]
    fn unsupported_scheme_is_refused_without_leaking() {
        let err = DatabaseUrl::parse("mysql://root:hunter2@h/db").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn with_database_swaps_only_the_name() {
        let url =
            DatabaseUrl::parse("postgres://u:pw@127.0.0.1:54329/postgres?sslmode=disable").unwrap();
        assert_eq!(
            url.with_database("t_1").expose(),
            "postgres://u:pw@127.0.0.1:54329/t_1?sslmode=disable"
        );
        let bare = DatabaseUrl::parse("postgres://u@h").unwrap();
        assert_eq!(bare.with_database("d").expose(), "postgres://u@h/d");
    }
}
