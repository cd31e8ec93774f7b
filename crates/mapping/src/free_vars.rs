//! Finding variables an expression uses but will never be given.
//!
//! CEL reports an undeclared variable only when it evaluates it, which for a typo such as
//! `usr.name` would dead-letter every entity at run time. Walking the parsed expression once at
//! load finds such names instead: an identifier is fine if it is one of the variables the rule
//! gets, a comprehension variable in scope (`x` in `list.map(x, …)`), or a name CEL itself
//! defines (type names, `optional`).

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr};

/// Identifiers CEL resolves itself: type names (for `type(x) == string`) and library namespaces.
const BUILTIN: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "uint",
    "string",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "optional",
];

/// Every unknown identifier in `expr`, with the id of the node that names it (for its position).
pub(crate) fn unknown_variables(expr: &IdedExpr, allowed: &[&str]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut bound = Vec::new();
    walk(expr, allowed, &mut bound, &mut out);
    out
}

fn walk(e: &IdedExpr, allowed: &[&str], bound: &mut Vec<String>, out: &mut Vec<(String, u64)>) {
    match &e.expr {
        Expr::Ident(name) => {
            let known = allowed.contains(&name.as_str())
                || BUILTIN.contains(&name.as_str())
                || bound.iter().any(|b| b == name);
            if !known {
                out.push((name.clone(), e.id));
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                walk(target, allowed, bound, out);
            }
            call.args.iter().for_each(|a| walk(a, allowed, bound, out));
        }
        Expr::Select(select) => walk(&select.operand, allowed, bound, out),
        Expr::List(list) => list
            .elements
            .iter()
            .for_each(|x| walk(x, allowed, bound, out)),
        Expr::Map(map) => walk_entries(&map.entries, allowed, bound, out),
        Expr::Struct(s) => walk_entries(&s.entries, allowed, bound, out),
        Expr::Comprehension(c) => {
            walk(&c.iter_range, allowed, bound, out);
            walk(&c.accu_init, allowed, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.iter().cloned());
            bound.push(c.accu_var.clone());
            for inner in [&c.loop_cond, &c.loop_step, &c.result] {
                walk(inner, allowed, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn walk_entries(
    entries: &[cel::common::ast::IdedEntryExpr],
    allowed: &[&str],
    bound: &mut Vec<String>,
    out: &mut Vec<(String, u64)>,
) {
    for entry in entries {
        match &entry.expr {
            EntryExpr::MapEntry(m) => {
                walk(&m.key, allowed, bound, out);
                walk(&m.value, allowed, bound, out);
            }
            EntryExpr::StructField(f) => walk(&f.value, allowed, bound, out),
        }
    }
}

/// Line and column (both from 1) of character offset `offset` in `text`, as the parser
/// reports syntax errors.
pub(crate) fn line_column(text: &str, offset: u32) -> (u32, u32) {
    let (mut line, mut column) = (1u32, 1u32);
    for (i, ch) in text.chars().enumerate() {
        if u32::try_from(i).map_or(true, |i| i >= offset) {
            break;
        }
        if ch == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}
