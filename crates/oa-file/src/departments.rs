//! The department tree implied by the rows' paths, with ids derived from the paths.
//!
//! A first load must be repeatable: the operator fixes row 17 and runs it again, or loads next
//! month's export. So a department's OA id is a hash of its path under the root (not a counter
//! that depends on row order): the same path gives the same id in every run, and a re-run finds
//! every department it created. Ids fall in `[2^40, 2^53)`: far above ids a person or the API
//! hands out, and still exact in JSON numbers.

use std::collections::BTreeMap;

use directory_model::{Department, OaDeptId, validate_department};
use sha2::{Digest, Sha256};

/// Ids derived from paths are at least this large.
pub const DERIVED_ID_MIN: i64 = 1 << 40;
/// …and smaller than this (2^53, the largest integer JSON readers keep exact).
pub const DERIVED_ID_END: i64 = 1 << 53;

/// The stable OA id of the department at `path` (segments below the root).
pub fn derived_dept_id(root: OaDeptId, path: &[String]) -> OaDeptId {
    let mut hash = Sha256::new();
    hash.update(b"dingsync oa-file department v1\0");
    hash.update(root.get().to_be_bytes());
    for segment in path {
        hash.update(segment.as_bytes());
        hash.update([0u8]);
    }
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let span = (DERIVED_ID_END - DERIVED_ID_MIN) as u64;
    OaDeptId(DERIVED_ID_MIN + (u64::from_be_bytes(first) % span) as i64)
}

/// One department of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDepartment {
    /// Its path below the root.
    pub path: Vec<String>,
    /// The entity (name, parent; everything else at its default).
    pub department: Department,
    /// The first row that named it.
    pub first_row: usize,
}

/// Departments collected from the rows, keyed by path (so parents sort before children).
#[derive(Debug)]
pub(crate) struct Tree {
    root: OaDeptId,
    nodes: BTreeMap<Vec<String>, PlannedDepartment>,
    ids: BTreeMap<OaDeptId, Vec<String>>,
}

impl Tree {
    pub(crate) fn new(root: OaDeptId) -> Self {
        Self {
            root,
            nodes: BTreeMap::new(),
            ids: BTreeMap::new(),
        }
    }

    /// Adds `path` and its ancestors; returns the department's id or the reasons it is refused.
    pub(crate) fn insert(&mut self, path: &[String], row: usize) -> Result<OaDeptId, Vec<String>> {
        let mut parent = self.root;
        for depth in 1..=path.len() {
            let prefix = &path[..depth];
            if let Some(node) = self.nodes.get(prefix) {
                parent = node.department.id;
                continue;
            }
            let id = derived_dept_id(self.root, prefix);
            if let Some(other) = self.ids.get(&id) {
                return Err(vec![format!(
                    "department id {id} derived from {:?} collides with {:?}",
                    prefix.join("/"),
                    other.join("/")
                )]);
            }
            let dept = Department::new(id, prefix[depth - 1].clone(), Some(parent));
            if let Err(errors) = validate_department(&dept) {
                return Err(errors
                    .errors()
                    .iter()
                    .map(|e| format!("department {:?}: {}", prefix.join("/"), e.message))
                    .collect());
            }
            self.ids.insert(id, prefix.to_vec());
            self.nodes.insert(
                prefix.to_vec(),
                PlannedDepartment {
                    path: prefix.to_vec(),
                    department: dept,
                    first_row: row,
                },
            );
            parent = id;
        }
        Ok(parent)
    }

    /// The departments, every parent before its children.
    pub(crate) fn into_parent_first(self) -> Vec<PlannedDepartment> {
        let mut all: Vec<PlannedDepartment> = self.nodes.into_values().collect();
        all.sort_by(|a, b| a.path.len().cmp(&b.path.len()).then(a.path.cmp(&b.path)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn ids_are_stable_distinct_and_in_range() {
        let a = derived_dept_id(OaDeptId(1), &p("销售部/华东"));
        assert_eq!(a, derived_dept_id(OaDeptId(1), &p("销售部/华东")));
        assert_ne!(a, derived_dept_id(OaDeptId(1), &p("销售部/华南")));
        assert_ne!(a, derived_dept_id(OaDeptId(2), &p("销售部/华东")));
        // Segment boundaries count: "a/bc" is not "ab/c".
        assert_ne!(
            derived_dept_id(OaDeptId(1), &p("a/bc")),
            derived_dept_id(OaDeptId(1), &p("ab/c"))
        );
        assert!((DERIVED_ID_MIN..DERIVED_ID_END).contains(&a.get()));
    }

    #[test]
    fn tree_creates_ancestors_parent_first() {
        let mut t = Tree::new(OaDeptId(1));
        let leaf = t.insert(&p("销售部/华东/上海"), 2).unwrap();
        t.insert(&p("研发部"), 3).unwrap();
        let depts = t.into_parent_first();
        let names: Vec<&str> = depts.iter().map(|d| d.department.name.as_str()).collect();
        assert_eq!(names, ["研发部", "销售部", "华东", "上海"]);
        assert_eq!(depts[3].department.id, leaf);
        assert_eq!(depts[1].department.parent, Some(OaDeptId(1)));
        assert_eq!(depts[2].department.parent, Some(depts[1].department.id));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut t = Tree::new(OaDeptId(1));
        let err = t.insert(&p("销售部/华东-一区"), 2).unwrap_err();
        assert!(err[0].contains("华东-一区"), "{err:?}");
    }
}
