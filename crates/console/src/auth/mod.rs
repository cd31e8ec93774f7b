//! Who may use the console: users and roles, password hashes, signed sessions with CSRF
//! tokens, and throttling of failed logins. None of it touches storage: users are looked up
//! through `AdminBackend::console_user`.

pub(crate) mod password;
pub(crate) mod session;
mod throttle;

pub use password::{PasswordError, PasswordHash, hash_password};
pub use session::{Session, SessionCodec, SessionError, SessionKey, SessionKeyError};
pub use throttle::{LoginThrottle, ThrottlePolicy};

use serde::{Deserialize, Serialize};

/// The two console roles. A viewer sees everything but secrets; an operator may also act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
}

impl Role {
    pub fn label(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub fn may_act(&self) -> bool {
        matches!(self, Role::Operator)
    }
}

/// A console user as stored by the service: the name, the role and the argon2 hash.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    pub password_hash: PasswordHash,
}
