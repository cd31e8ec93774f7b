//! Console users: looked up by the login form, added by `dingsync console add-user`. There is
//! no default account; the password is hashed with argon2 by the console crate before it
//! reaches the store, and read from stdin (never from the command line, where `ps` shows it).

use std::io::BufRead;

use anyhow::Context;
use console::{BackendError, ConsoleUser, PasswordHash, Role, hash_password};
use directory_store::Store;

use super::internal;

/// The console user with this name, for the login form.
pub async fn lookup(store: &Store, name: &str) -> Result<Option<ConsoleUser>, BackendError> {
    let Some(row) = store.console_user_get(name).await.map_err(internal)? else {
        return Ok(None);
    };
    let role = Role::from_label(&row.role).ok_or_else(|| BackendError::Invalid {
        field: "role".to_owned(),
        message: format!("console user {name} has an unknown role {:?}", row.role),
    })?;
    let password_hash = PasswordHash::from_phc(row.password_phc).map_err(internal)?;
    Ok(Some(ConsoleUser {
        name: row.name,
        role,
        password_hash,
    }))
}

/// Checks a console user name: 1–64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(ok_char) {
        anyhow::bail!("NAME: use 1 to 64 letters, digits, '.', '_', '-' or '@' (got {name:?})");
    }
    Ok(())
}

/// Adds (or replaces) a console user with an argon2 hash of `password`.
pub async fn add_user(
    store: &Store,
    name: &str,
    role: Role,
    password: &str,
    now_ms: i64,
) -> anyhow::Result<()> {
    check_name(name)?;
    if password.chars().count() < 12 {
        anyhow::bail!("password: use at least 12 characters");
    }
    let hash = hash_password(password).context("cannot hash the password")?;
    store
        .console_user_put(name, role.label(), hash.as_phc(), now_ms)
        .await
        .context("cannot store the console user")?;
    Ok(())
}

/// The password for `add-user`: the first line of stdin with `--password-stdin`, else asked
/// twice on the terminal (echoed, as std has no way to hide it; prefer `--password-stdin`).
pub fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if from_stdin {
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    eprint!("password: ");
    stdin.lock().read_line(&mut line)?;
    let first = line.trim_end_matches(['\r', '\n']).to_owned();
    line.clear();
    eprint!("again: ");
    stdin.lock().read_line(&mut line)?;
    if first != line.trim_end_matches(['\r', '\n']) {
        anyhow::bail!("password: the two entries differ");
    }
    Ok(first)
}
