//! `/console/plan`: the engine's plan (what a reconcile would do now) as the console's diff,
//! grouped by side and kind. Each entry's id is its side, kind and OA id, so a selection
//! names the entries the operator saw even when the plan is computed again to apply it.
//!
//! Why a cache: a plan reads all of DingTalk (about as long as an import: seconds at a few
//! thousand people, 10+ s at 100,000), far over a page's budget, and a page that blocks
//! that long while a browser waits is a page people reload (starting the crawl again). So
//! the page shows the last plan computed, saying when and how long it took, and a plan is
//! computed in the background: on the first visit, when the one shown is older than
//! [`STALE_AFTER_MS`], after a plan is applied, and when an operator asks ("Compute now").
//! One computation at a time; while it runs the page shows its elapsed time against the
//! previous one's. Applying always plans afresh (as `reconcile` does), so a stale page can
//! never apply a stale plan.

use std::sync::{Arc, Mutex};

use console::BackendError;
use console::views::{
    FieldChange, PlanComputing, PlanEntry, PlanGroup, PlanOp, PlanQuery, PlanView, Side,
};
use sync_engine::plan::{Action, Plan, PlanOptions, Target};

use super::attention::object_kind;
use super::time::format_ms;
use super::{Admin, internal};

pub async fn current(admin: &Admin) -> Result<Plan, BackendError> {
    sync_engine::plan::plan(admin.sync()?, PlanOptions::default())
        .await
        .map_err(internal)
}

/// A shown plan older than this is computed again in the background when the page is seen.
const STALE_AFTER_MS: i64 = 5 * 60_000;

/// The plan page's plan: the last computed, and the computation under way. Cheap to clone
/// (one shared state).
#[derive(Debug, Clone, Default)]
pub struct PlanCache(Arc<Mutex<CacheState>>);

#[derive(Debug, Default)]
struct CacheState {
    last: Option<Computed>,
    /// When the computation under way started (Unix ms).
    running_since_ms: Option<i64>,
    /// The last computation's failure and when it happened, until one succeeds.
    error: Option<(String, i64)>,
}

#[derive(Debug)]
struct Computed {
    view: PlanView,
    at_ms: i64,
    took_ms: i64,
}

impl PlanCache {
    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the plan shown (it was just applied) and computes a new one.
    pub fn invalidate(&self, admin: &Admin) {
        self.state().last = None;
        self.refresh(admin);
    }

    /// Starts computing a plan in the background unless one is being computed (or there is
    /// no engine to compute it with). Whether a computation is under way afterwards.
    pub fn refresh(&self, admin: &Admin) -> bool {
        if admin.sync.is_none() {
            return false;
        }
        {
            let mut state = self.state();
            if state.running_since_ms.is_some() {
                return true;
            }
            state.running_since_ms = Some(admin.now_ms());
        }
        let (cache, admin) = (self.clone(), admin.clone());
        tokio::spawn(async move {
            let started = admin.now_ms();
            let result = build_view(&admin).await;
            let finished = admin.now_ms();
            let mut state = cache.state();
            state.running_since_ms = None;
            match result {
                Ok(view) => {
                    state.error = None;
                    state.last = Some(Computed {
                        view,
                        at_ms: finished,
                        took_ms: finished - started,
                    });
                }
                Err(e) => {
                    let message = match &e {
                        BackendError::Internal(cause) => {
                            tracing::warn!(error = %cause, "computing the plan failed");
                            "computing the plan failed; the service log has the cause".to_owned()
                        }
                        other => other.to_string(),
                    };
                    state.error = Some((message, finished));
                }
            }
        });
        true
    }
}

/// The stable id of plan item `index`: its side, kind and object.
pub fn entry_id(plan: &Plan, index: usize) -> String {
    let item = &plan.items[index];
    let side = match item.target {
        Target::Oa => "oa",
        Target::DingTalk => "dingtalk",
    };
    format!(
        "{side}:{}:{}",
        item.kind.as_str(),
        item.oa_id
            .as_deref()
            .or(item.ding_id.as_deref())
            .unwrap_or("-")
    )
}

/// A planned field value as the console shows it: strings as they are (the page escapes
/// them), absent as "(none)", anything else as compact JSON.
fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

/// The plan page: the last plan computed with its age, computing one in the background when
/// there is none yet or it is stale.
pub async fn plan_view(admin: &Admin, query: &PlanQuery) -> Result<PlanView, BackendError> {
    admin.sync()?;
    let now = admin.now_ms();
    let cache = &admin.plans;
    let stale = {
        let state = cache.state();
        state
            .last
            .as_ref()
            .is_none_or(|last| now - last.at_ms > STALE_AFTER_MS)
            // After a failure, a visit tries again only once the failure is a minute old.
            && state.error.as_ref().is_none_or(|(_, at)| now - at > 60_000)
    };
    if stale {
        cache.refresh(admin);
    }
    let state = cache.state();
    let computing = state.running_since_ms.map(|since| PlanComputing {
        started_at: format_ms(since),
        elapsed_secs: secs(now - since),
        expected_secs: state.last.as_ref().map(|l| secs(l.took_ms + 999)),
    });
    Ok(match &state.last {
        None => PlanView::not_ready(computing, state.error.clone().map(|(e, _)| e)),
        Some(last) => PlanView {
            age_secs: secs(now - last.at_ms),
            took_ms: last.took_ms.max(0) as u64,
            computing,
            error: state.error.clone().map(|(e, _)| e),
            page: query.page,
            page_rows: PLAN_ROWS,
            groups: page_of(&last.view.groups, query.page),
            generated_at: last.view.generated_at.clone(),
            deletion_threshold: last.view.deletion_threshold,
            ready: true,
            entries_total: last.view.entries_total,
            deletions_total: last.view.deletions_total,
        },
    })
}

/// Entries a plan page shows.
const PLAN_ROWS: u32 = 200;

/// The groups' entries on page `page` (groups without one are left out; each keeps its
/// whole-plan total).
fn page_of(groups: &[PlanGroup], page: u32) -> Vec<PlanGroup> {
    let start = page as usize * PLAN_ROWS as usize;
    let end = start + PLAN_ROWS as usize;
    let mut seen = 0usize;
    let mut out = Vec::new();
    for group in groups {
        let (from, to) = (seen, seen + group.entries.len());
        seen = to;
        if to <= start || from >= end {
            continue;
        }
        let (a, b) = (start.max(from) - from, end.min(to) - from);
        out.push(PlanGroup {
            side: group.side,
            kind: group.kind,
            entries: group.entries[a..b].to_vec(),
            total: group.total,
        });
    }
    out
}

fn secs(ms: i64) -> u64 {
    (ms.max(0) / 1000) as u64
}

/// Computes the plan now, as the page shows it.
async fn build_view(admin: &Admin) -> Result<PlanView, BackendError> {
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
            .map(|field| {
                let values = item.changes.iter().find(|c| &c.field == field);
                let new = values.map(|c| shown(&c.new));
                FieldChange {
                    field: field.clone(),
                    old: values.map(|c| shown(&c.old)),
                    new: match (item.conflicts.contains(field), new) {
                        (true, Some(v)) => Some(format!("{v} (conflict: winner's value)")),
                        (true, None) => Some("conflict: winner's value".into()),
                        (false, v) => v,
                    },
                }
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
                total: 0,
            }),
        }
    }
    for group in &mut groups {
        group.total = group.entries.len() as u64;
    }
    let held = plan.items.iter().filter(|i| i.held).count() as u64;
    let deletions = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Delete)
        .count() as u64;
    Ok(PlanView {
        generated_at: format_ms(admin.now_ms()),
        ready: true,
        age_secs: 0,
        took_ms: 0,
        computing: None,
        error: None,
        page: 0,
        page_rows: 0,
        entries_total: plan.items.len() as u64,
        deletions_total: deletions,
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
