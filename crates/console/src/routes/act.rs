//! `POST /console/act`: the one form endpoint for every operator action. A form names its
//! action in the `action` field; this file turns the fields into an [`OperatorAction`],
//! checks CSRF first and the role second, hands the action to the backend with the user's
//! name, and sends the person back to the page they came from with a notice.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::html::error_page;
use super::request::{self, NOTICE_COOKIE};
use crate::backend::AdminBackend;
use crate::error::ConsoleError;
use crate::views::{Actor, DeletionDecision, ObjectKind, OperatorAction};

/// The submitted fields, in order (a plan selection repeats `entry`).
#[derive(Debug)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        let value = self.0.iter().find(|(key, _)| key == name)?.1.trim();
        (!value.is_empty()).then_some(value)
    }

    fn all(&self, name: &str) -> Vec<String> {
        let values = self.0.iter().filter(|(key, _)| key == name);
        values
            .map(|(_, value)| value.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }

    fn required(&self, name: &str) -> Result<String, ConsoleError> {
        let value = self
            .get(name)
            .ok_or_else(|| ConsoleError::bad_input(name, "is required"))?;
        super::html::check_id(value, name)?;
        Ok(value.to_owned())
    }

    fn kind(&self) -> Result<ObjectKind, ConsoleError> {
        let kind = self.required("kind")?;
        ObjectKind::from_label(&kind).ok_or_else(|| {
            ConsoleError::bad_input(
                "kind",
                format!("\"{kind}\" is not user, department or role"),
            )
        })
    }
}

/// The action a form asks for, or which field is wrong.
pub(crate) fn parse_action(fields: &Fields) -> Result<OperatorAction, ConsoleError> {
    let action = fields
        .get("action")
        .ok_or_else(|| ConsoleError::bad_input("action", "is required"))?;
    let decide = |decision| -> Result<OperatorAction, ConsoleError> {
        let entry = fields.get("entry").map(str::to_owned);
        Ok(OperatorAction::DecideDeletion {
            hold: fields.required("hold")?,
            entry,
            decision,
        })
    };
    Ok(match action {
        "push_now" => OperatorAction::PushNow {
            kind: fields.kind()?,
            id: fields.required("id")?,
        },
        "refetch" => OperatorAction::Refetch {
            kind: fields.kind()?,
            id: fields.required("id")?,
        },
        "approve_deletion" => decide(DeletionDecision::Approve)?,
        "reject_deletion" => decide(DeletionDecision::Reject)?,
        "accept_conflict" => OperatorAction::AcceptConflict {
            conflict: fields.required("conflict")?,
        },
        "apply_other_side" => OperatorAction::ApplyOtherSide {
            conflict: fields.required("conflict")?,
        },
        "link_soft_match" => OperatorAction::LinkSoftMatch {
            item: fields.required("item")?,
            oa_id: fields.required("oa_id")?,
        },
        "create_from_soft_match" => OperatorAction::CreateFromSoftMatch {
            item: fields.required("item")?,
        },
        "retry_dead_letter" => OperatorAction::RetryDeadLetter {
            dead_letter: fields.required("dead_letter")?,
        },
        "drop_dead_letter" => OperatorAction::DropDeadLetter {
            dead_letter: fields.required("dead_letter")?,
        },
        "apply_plan" => parse_apply_plan(fields)?,
        "compute_plan" => OperatorAction::ComputePlan,
        "start_import" => OperatorAction::StartImport,
        "start_reconcile" => OperatorAction::StartReconcile,
        "approve_mapping_change" => OperatorAction::ApproveMappingChange {
            fingerprint: fields.required("fingerprint")?,
        },
        other => {
            return Err(ConsoleError::bad_input(
                "action",
                format!("\"{other}\" is not an action the console knows"),
            ));
        }
    })
}

fn parse_apply_plan(fields: &Fields) -> Result<OperatorAction, ConsoleError> {
    let confirm_deletions = fields.get("confirm_deletions") == Some("yes");
    let entries = match fields.get("scope") {
        Some("all") => None,
        Some("selected") => {
            let entries = fields.all("entry");
            if entries.is_empty() {
                return Err(ConsoleError::bad_input(
                    "entry",
                    "select at least one plan entry to apply",
                ));
            }
            Some(entries)
        }
        _ => {
            return Err(ConsoleError::bad_input(
                "scope",
                "choose to apply all entries or the selected ones",
            ));
        }
    };
    Ok(OperatorAction::ApplyPlan {
        entries,
        confirm_deletions,
    })
}

pub(crate) async fn submit<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let session = match request::session(&s, &headers) {
        Ok(session) => session,
        Err(error) => return error_page(&s, error, None),
    };
    let here = request::safe_return(fields.get("return_to"));
    let chrome = request::chrome(&s, &session, &headers, "", here.clone())
        .await
        .ok();
    if let Err(error) = request::check_csrf(&s, &session, fields.get("csrf")) {
        tracing::warn!(user = %session.user, "console: action refused, CSRF token missing or wrong");
        return error_page(&s, error, chrome);
    }
    let action = match parse_action(&fields) {
        Ok(action) => action,
        Err(error) => return error_page(&s, error, chrome),
    };
    if !session.role.may_act() {
        let error = ConsoleError::Forbidden {
            role: session.role.label(),
            action: action.describe(),
        };
        return error_page(&s, error, chrome);
    }
    let actor = Actor {
        name: session.user.clone(),
        role: session.role,
    };
    match s.backend.perform(&actor, &action).await {
        Ok(outcome) => {
            let notice: String =
                form_urlencoded::byte_serialize(outcome.message.as_bytes()).collect();
            let headers = axum::response::AppendHeaders([
                (header::SET_COOKIE, request::session_cookie(&s, &session)),
                (
                    header::SET_COOKIE,
                    request::set_cookie(&s, NOTICE_COOKIE, &notice, "/console", 60),
                ),
            ]);
            (headers, Redirect::to(&here)).into_response()
        }
        Err(error) => error_page(&s, error.into(), chrome),
    }
}
