//! `/console/plan`: the engine's plan (what a reconcile would do now) as the console's diff,
//! grouped by side and kind. Each entry's id is its position in the plan with its kind and
//! OA id, so a selection names exactly the entries the operator saw.

use console::BackendError;
use console::views::{FieldChange, PlanEntry, PlanGroup, PlanOp, PlanView, Side};
use sync_engine::plan::{Action, Plan, PlanOptions, Target};

use super::attention::object_kind;
use super::time::format_ms;
use super::{Admin, internal};

pub async fn current(admin: &Admin) -> Result<Plan, BackendError> {
    sync_engine::plan::plan(admin.sync()?, PlanOptions::default())
        .await
        .map_err(internal)
}

/// The stable id of plan item `index`.
pub fn entry_id(plan: &Plan, index: usize) -> String {
    let item = &plan.items[index];
    format!(
        "{index}:{}:{}",
        item.kind.as_str(),
        item.oa_id
            .as_deref()
            .or(item.ding_id.as_deref())
            .unwrap_or("-")
    )
}

pub async fn plan_view(admin: &Admin) -> Result<PlanView, BackendError> {
    let plan = current(admin).await?;
    let mut groups: Vec<PlanGroup> = Vec::new();
    for (index, item) in plan.items.iter().enumerate() {
        let side = match item.target {
            Target::Oa => Side::Oa,
            Target::DingTalk => Side::DingTalk,
        };
        let kind = object_kind(item.kind);
        let op = match item.action {
            Action::Create => PlanOp::Create,
            Action::Update => PlanOp::Update,
            Action::Delete => PlanOp::Delete,
        };
        let changes = item
            .fields
            .iter()
            .map(|field| FieldChange {
                field: field.clone(),
                old: None,
                new: item
                    .conflicts
                    .contains(field)
                    .then(|| "conflict: winner's value".into()),
            })
            .collect();
        let entry = PlanEntry {
            id: entry_id(&plan, index),
            object_id: item
                .oa_id
                .clone()
                .or(item.ding_id.clone())
                .unwrap_or_default(),
            name: item.name.clone(),
            op,
            changes,
        };
        match groups.iter_mut().find(|g| g.side == side && g.kind == kind) {
            Some(group) => group.entries.push(entry),
            None => groups.push(PlanGroup {
                side,
                kind,
                entries: vec![entry],
            }),
        }
    }
    let held = plan.items.iter().filter(|i| i.held).count() as u64;
    let deletions = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Delete)
        .count() as u64;
    Ok(PlanView {
        generated_at: format_ms(admin.now_ms()),
        groups,
        // The engine decided which deletions it holds; the console asks for confirmation
        // exactly when some are held.
        deletion_threshold: if held > 0 {
            deletions - held
        } else {
            deletions
        },
    })
}
