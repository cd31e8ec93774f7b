//! `dingsync load FILE [--dry-run]`: the first load of the OA side from an OA or HR export.
//!
//! The file is read by the `oa-file` crate with the `[load]` section of the config (its crate
//! doc, "How `dingsync load` uses it", is the contract this follows). Why writes go through the
//! store's ordinary create/update calls with an OA [`WriteCtx`]: a loaded person must be held
//! to exactly the rules an API write is, and queued in the outbox exactly like one, so the
//! pusher takes the file to DingTalk with no path of its own. Every problem is reported at once
//! as (row, column, reason); nothing is written while there is one, and a dry run never writes.
//! Writing what the directory already holds changes nothing, so a re-run is a no-op.

use std::path::Path;

use anyhow::Context;
use directory_store::{Store, WriteCtx};
use oa_file::{LoadDiff, Problem};

use crate::config::Config;
use crate::server;

/// How many writes go between two progress lines.
const BATCH: usize = 200;

/// What a load did (or, on a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts {
    /// Departments created.
    pub departments_created: usize,
    /// Departments renamed or moved.
    pub departments_updated: usize,
    /// Users created.
    pub users_created: usize,
    /// Users with changed fields.
    pub users_updated: usize,
}

/// Runs the command: `Ok(true)` when the file is clean (and, unless `dry_run`, written);
/// `Ok(false)` when it has problems, which are printed on stdout first.
pub async fn run(config: &Config, file: &Path, dry_run: bool) -> anyhow::Result<bool> {
    let Some(load) = &config.load else {
        anyhow::bail!(
            "no [load] section in the config: name the file's columns there first (see the \
             README, \"Loading the OA side from a file\")"
        );
    };
    let loaded = oa_file::load_path(file, load)
        .with_context(|| format!("cannot load {}", file.display()))?;
    let rows = loaded.rows;
    let store = server::open_store(config).await?;
    let outcome = plan_and_write(&store, loaded, rows, dry_run).await;
    store.close().await;
    outcome
}

async fn plan_and_write(
    store: &Store,
    loaded: oa_file::Loaded,
    rows: usize,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let mut problems = loaded.problems.clone();
    let snapshot = store
        .snapshot()
        .await
        .context("cannot read the directory")?;
    let departments: Vec<_> = snapshot.departments.into_values().collect();
    let users: Vec<_> = snapshot.users.into_values().collect();
    let diff = loaded.plan.diff(&departments, &users);
    problems.extend(unknown_department_problems(&diff));
    if !problems.is_empty() {
        problems.sort_by(|a, b| (a.row, &a.column).cmp(&(b.row, &b.column)));
        for p in &problems {
            println!("{}", p.to_string().escape_debug());
        }
        println!(
            "{} problem(s) in {rows} row(s); nothing was written. Fix the file and run it again.",
            problems.len()
        );
        return Ok(false);
    }
    let counts = LoadCounts {
        departments_created: diff.create_departments.len(),
        departments_updated: diff.update_departments.len(),
        users_created: diff.create_users.len(),
        users_updated: diff.update_users.len(),
    };
    let summary = summary_line(&counts, &diff);
    if dry_run {
        println!("{rows} row(s), no problems; a real run would: {summary}");
        return Ok(true);
    }
    if diff.is_noop() {
        println!("{rows} row(s), no problems; the directory already holds the file: {summary}");
        return Ok(true);
    }
    write(store, diff).await?;
    println!("loaded {rows} row(s): {summary}; the pusher takes them to DingTalk");
    Ok(true)
}

/// Department ids the file names (id mode) that the directory lacks, as problems of their rows.
fn unknown_department_problems(diff: &LoadDiff) -> Vec<Problem> {
    diff.unknown_departments
        .iter()
        .map(|(row, id)| Problem {
            row: *row,
            column: "department".to_owned(),
            reason: format!("department {} does not exist in the directory", id.get()),
        })
        .collect()
}

fn summary_line(c: &LoadCounts, diff: &LoadDiff) -> String {
    format!(
        "create {} department(s), update {}, create {} user(s), update {} ({} department(s) and \
         {} user(s) of the directory are not in the file and are left alone)",
        c.departments_created,
        c.departments_updated,
        c.users_created,
        c.users_updated,
        diff.departments_not_in_file.len(),
        diff.users_not_in_file.len(),
    )
}

/// Writes the diff in its order (departments parent first, users managers first), each write
/// an OA write: validated, checked and queued for DingTalk. Prints a line every [`BATCH`].
async fn write(store: &Store, diff: LoadDiff) -> anyhow::Result<()> {
    let total = diff.create_departments.len()
        + diff.update_departments.len()
        + diff.create_users.len()
        + diff.update_users.len();
    let ctx = || WriteCtx::oa("load", now_ms());
    let mut done = 0usize;
    let tick = |done: &mut usize| {
        *done += 1;
        if (*done).is_multiple_of(BATCH) || *done == total {
            println!("  written {done}/{total}");
        }
    };
    for d in diff.create_departments {
        let id = d.id.get();
        store
            .create_department(&ctx(), d)
            .await
            .with_context(|| format!("cannot create department {id}"))?;
        tick(&mut done);
    }
    for d in diff.update_departments {
        let id = d.id.get();
        store
            .update_department(&ctx(), d, None)
            .await
            .with_context(|| format!("cannot update department {id}"))?;
        tick(&mut done);
    }
    for u in diff.create_users {
        let id = u.id.as_str().escape_debug().to_string();
        store
            .create_user(&ctx(), u)
            .await
            .with_context(|| format!("cannot create user {id}"))?;
        tick(&mut done);
    }
    for u in diff.update_users {
        let id = u.id.as_str().escape_debug().to_string();
        store
            .update_user(&ctx(), u, None)
            .await
            .with_context(|| format!("cannot update user {id}"))?;
        tick(&mut done);
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
