//! A plan as a readable table, like `terraform plan`, with a summary line per side.
//!
//! An update shows every changed field as `field: old → new`, so the administrator sees what
//! would be overwritten before `reconcile` does it. Strings are quoted with Rust's escapes (so
//! an empty or space-only value is visible and a control character reads as `\u{1b}`, the form
//! the CLI's escaping uses), `(none)` is an absent value, and a string longer than
//! [`VALUE_CHARS`] is cut with `…` (`plan --json` carries the whole value).

use std::fmt::Write as _;

use super::{Action, FieldChange, Plan, PlanItem, Target};

/// How many characters of a string value the table shows.
const VALUE_CHARS: usize = 60;

/// The table's column headers.
const HEADERS: [&str; 5] = ["change", "kind", "id", "name", "fields"];

impl Plan {
    /// The plan as a readable table, like `terraform plan`.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        if self.items.is_empty() {
            out.push_str("No changes: OA and DingTalk agree.\n");
            return out;
        }
        let rows: Vec<[String; 5]> = self.items.iter().map(row).collect();
        let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = HEADERS.iter().map(|h| (*h).to_owned()).collect();
        out.push_str(&line(&header, &widths));
        out.push('\n');
        for r in &rows {
            out.push_str(&line(r, &widths));
            out.push('\n');
        }
        self.summary(&mut out);
        out
    }

    /// The counts per side and action, and the note on held deletions.
    fn summary(&self, out: &mut String) {
        let count = |t: Target, a: Action| {
            self.items
                .iter()
                .filter(|i| i.target == t && i.action == a)
                .count()
        };
        let _ = writeln!(
            out,
            "\nDingTalk: {} to create, {} to change, {} to delete. OA: {} to create, {} to change, {} to delete.",
            count(Target::DingTalk, Action::Create),
            count(Target::DingTalk, Action::Update),
            count(Target::DingTalk, Action::Delete),
            count(Target::Oa, Action::Create),
            count(Target::Oa, Action::Update),
            count(Target::Oa, Action::Delete),
        );
        if self.deletions_held {
            out.push_str(
                "Deletions exceed the safety threshold and are held; run `dingsync reconcile --yes` to apply them.\n",
            );
        }
    }
}

/// One item's cells.
fn row(i: &PlanItem) -> [String; 5] {
    let sign = match i.action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
    };
    let target = match i.target {
        Target::Oa => "OA",
        Target::DingTalk => "DingTalk",
    };
    let id = match (&i.oa_id, &i.ding_id) {
        (Some(oa), _) => oa.clone(),
        (None, Some(d)) => format!("ding:{d}"),
        (None, None) => String::new(),
    };
    let mut detail = if i.changes.len() == i.fields.len() && !i.changes.is_empty() {
        i.changes.iter().map(change).collect::<Vec<_>>().join(", ")
    } else {
        i.fields.join(", ")
    };
    if !i.conflicts.is_empty() {
        let _ = write!(detail, " (conflict: {})", i.conflicts.join(", "));
    }
    if i.held {
        detail.push_str(" HELD: needs confirmation");
    }
    if !i.problems.is_empty() {
        let _ = write!(detail, " INVALID: {}", i.problems.join("; "));
    }
    [
        format!("{sign} {target}"),
        i.kind.to_string(),
        id,
        i.name.clone(),
        detail.trim().to_owned(),
    ]
}

/// `field: old → new`.
fn change(c: &FieldChange) -> String {
    format!("{}: {} → {}", c.field, value(&c.old), value(&c.new))
}

/// A field's value as the table shows it (see the module docs).
fn value(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "(none)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > VALUE_CHARS => {
            let cut: String = s.chars().take(VALUE_CHARS).collect();
            format!("{cut:?}…")
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", value(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// One line of the table: every cell but the last padded to its column's width.
fn line(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            s.push_str(cell);
        } else {
            let pad = w.saturating_sub(cell.chars().count());
            let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
        }
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use directory_model::{OaUserId, Snapshot};
    use directory_store::EntityKind;

    use super::super::build::tests::delete_item;
    use super::super::{FieldChange, Totals};
    use super::*;

    #[test]
    fn table_lists_every_item_with_a_summary() {
        let mut item = delete_item(EntityKind::User, 1);
        item.held = true;
        let update = PlanItem {
            target: Target::DingTalk,
            action: Action::Update,
            kind: EntityKind::Department,
            oa_id: Some("5".into()),
            name: "R&D".into(),
            fields: vec!["name".into(), "managers".into()],
            changes: vec![
                FieldChange {
                    field: "name".into(),
                    old: "R&D".into(),
                    new: "Evil\u{1b}[2J".into(),
                },
                FieldChange {
                    field: "managers".into(),
                    old: serde_json::json!([]),
                    new: serde_json::json!(["alice", "bob"]),
                },
            ],
            conflicts: vec!["name".into()],
            ..delete_item(EntityKind::Department, 5)
        };
        let long = PlanItem {
            target: Target::Oa,
            action: Action::Update,
            kind: EntityKind::User,
            oa_id: Some("u1".into()),
            name: "U".into(),
            fields: vec!["remark".into(), "manager".into()],
            changes: vec![
                FieldChange {
                    field: "remark".into(),
                    old: "x".repeat(100).into(),
                    new: "".into(),
                },
                FieldChange {
                    field: "manager".into(),
                    old: serde_json::Value::Null,
                    new: "boss".into(),
                },
            ],
            ..delete_item(EntityKind::User, 1)
        };
        let plan = Plan {
            items: vec![update, item, long],
            deletions_held: true,
            totals: Totals::default(),
            unmapped: Vec::new(),
            new_users: Vec::new(),
            oa_writes: Snapshot::default(),
        };
        let table = plan.render_table();
        assert!(table.contains("~ DingTalk  department  5"), "{table}");
        assert!(
            table.contains(
                r#"name: "R&D" → "Evil\u{1b}[2J", managers: [] → ["alice", "bob"] (conflict: name)"#
            ),
            "{table}"
        );
        assert!(!table.contains('\u{1b}'), "{table}");
        let cut = format!(r#"remark: "{}"… → """#, "x".repeat(60));
        assert!(table.contains(&cut), "{table}");
        assert!(table.contains(r#"manager: (none) → "boss""#), "{table}");
        assert!(table.contains("- OA"), "{table}");
        assert!(table.contains("HELD"), "{table}");
        assert!(
            table.contains("DingTalk: 0 to create, 1 to change, 0 to delete."),
            "{table}"
        );
        let json = plan.to_json();
        assert_eq!(json["items"][0]["action"], "update");
        assert_eq!(json["items"][1]["held"], true);
        assert_eq!(json["items"][0]["changes"][0]["old"], "R&D");
        assert_eq!(json["items"][0]["changes"][0]["new"], "Evil\u{1b}[2J");
        assert_eq!(json["items"][2]["changes"][0]["old"], "x".repeat(100));
        assert_eq!(json["items"][1]["changes"], serde_json::json!([]));
        let _ = OaUserId::new("x");
    }
}
