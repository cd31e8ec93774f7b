//! The compiled `[mapping]`: per entity kind and direction, the steps that turn one side's
//! entity into the other side's values.
//!
//! A mapped entity starts as a copy of the source (identity for every field without a rule), then
//! each field rule overwrites its field from the *source* entity (rules never see each other's
//! output, so their order cannot matter), then each extension rule sets or removes one key.

use std::collections::BTreeSet;

use cel::Value;
use directory_model::{Department, FieldAccess, MergePolicy, User, UserField};

use crate::config::{Apply, KindMappingConfig, Limits, MappingConfig};
use crate::error::{EvalError, MapError};
use crate::expr::{CelEnv, Compiler, Expr, context_for, describe};
use crate::kind::Kind;

/// Which way a value travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the OA entity to DingTalk's value.
    ToDingTalk,
    /// From the DingTalk entity to OA's value.
    ToOa,
}

impl Direction {
    fn key(self) -> &'static str {
        match self {
            Direction::ToDingTalk => "to_dingtalk",
            Direction::ToOa => "to_oa",
        }
    }
}

/// The other side's values for one entity, and which of them apply only on create.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped<E: FieldAccess> {
    /// The entity as the target side should hold it (ids still in the model's id space; the
    /// engine translates them through the id map as today).
    pub entity: E,
    /// Fields whose mapped value is written only when the entity is created.
    pub create_only: BTreeSet<E::Field>,
    /// Extension keys whose mapped value is written only on create.
    pub create_only_extension: BTreeSet<String>,
}

/// A user mapped to the other side.
pub type MappedUser = Mapped<User>;
/// A department mapped to the other side.
pub type MappedDepartment = Mapped<Department>;

impl Mapped<User> {
    /// The values to write when the target already exists: create-only fields and extension
    /// keys keep `existing`'s values.
    pub fn for_update(&self, existing: &User) -> User {
        let mut out = self.entity.clone();
        for f in &self.create_only {
            out.copy_field(existing, *f);
        }
        for key in &self.create_only_extension {
            match existing.extension.get(key) {
                Some(v) => out.extension.insert(key.clone(), v.clone()),
                None => out.extension.remove(key),
            };
        }
        out
    }
}

impl Mapped<Department> {
    /// The values to write when the target already exists: create-only fields keep
    /// `existing`'s values.
    pub fn for_update(&self, existing: &Department) -> Department {
        let mut out = self.entity.clone();
        for f in &self.create_only {
            out.copy_field(existing, *f);
        }
        out
    }
}

/// Where one field's value comes from.
#[derive(Debug, Clone)]
enum Source<F> {
    /// A plain field name: copy that field of the source entity.
    Field(F),
    /// A CEL expression over the source entity.
    Expr(Expr),
}

#[derive(Debug, Clone)]
struct FieldStep<F> {
    target: F,
    key: String,
    source: Source<F>,
}

#[derive(Debug, Clone)]
struct ExtStep {
    name: String,
    expr: Expr,
}

/// One kind's compiled rules.
#[derive(Debug, Clone)]
struct KindMapping<K: Kind> {
    to_dingtalk: Vec<FieldStep<K::Field>>,
    to_oa: Vec<FieldStep<K::Field>>,
    ext_to_dingtalk: Vec<ExtStep>,
    ext_to_oa: Vec<ExtStep>,
    create_only: BTreeSet<K::Field>,
    create_only_extension: BTreeSet<String>,
    one_way_to_dingtalk: Vec<K::Field>,
    policy: MergePolicy<K::Field>,
}

/// The compiled `[mapping]` section. Cheap to share: expressions are reference-counted.
#[derive(Debug, Clone)]
pub struct Mapping {
    users: KindMapping<User>,
    departments: KindMapping<Department>,
    soft_match: Vec<UserField>,
    users_winner_set: bool,
    departments_winner_set: bool,
    limits: Limits,
    // The CEL environment (stdlib + strings) every program was compiled for and runs in.
    env: CelEnv,
}

/// Today's soft-match order (design.md): mobile, then job number, then email.
pub const DEFAULT_SOFT_MATCH: [UserField; 3] =
    [UserField::Mobile, UserField::JobNumber, UserField::Email];

impl Mapping {
    /// Compiles `config`, adding every problem to `compiler`; `None` if there was any.
    pub(crate) fn compile(config: &MappingConfig, compiler: &mut Compiler) -> Option<Self> {
        let before = compiler.problems.len();
        let users = compile_kind::<User>(&config.users, compiler);
        let departments = compile_kind::<Department>(&config.departments, compiler);
        let soft_match = compile_soft_match(config, compiler);
        if compiler.problems.len() > before {
            return None;
        }
        Some(Self {
            users,
            departments,
            soft_match,
            users_winner_set: config.users.winner.is_some(),
            departments_winner_set: config.departments.winner.is_some(),
            limits: config.limits,
            env: compiler.env(),
        })
    }

    /// DingTalk's values for an OA user.
    pub fn user_to_dingtalk(&self, user: &User) -> Result<MappedUser, MapError> {
        self.map(&self.users, user, Direction::ToDingTalk)
    }

    /// OA's values for a DingTalk user (in the model's shape).
    pub fn user_to_oa(&self, user: &User) -> Result<MappedUser, MapError> {
        self.map(&self.users, user, Direction::ToOa)
    }

    /// DingTalk's values for an OA department.
    pub fn department_to_dingtalk(&self, dept: &Department) -> Result<MappedDepartment, MapError> {
        self.map(&self.departments, dept, Direction::ToDingTalk)
    }

    /// OA's values for a DingTalk department (in the model's shape).
    pub fn department_to_oa(&self, dept: &Department) -> Result<MappedDepartment, MapError> {
        self.map(&self.departments, dept, Direction::ToOa)
    }

    /// Whether the users' conflict winner was configured here (else the service-wide one holds).
    pub fn user_winner_configured(&self) -> bool {
        self.users_winner_set
    }

    /// Whether the departments' conflict winner was configured here.
    pub fn department_winner_configured(&self) -> bool {
        self.departments_winner_set
    }

    /// Field owners and conflict winner for users, for the three-way merge.
    pub fn user_policy(&self) -> &MergePolicy<UserField> {
        &self.users.policy
    }

    /// Field owners and conflict winner for departments.
    pub fn department_policy(&self) -> &MergePolicy<directory_model::DeptField> {
        &self.departments.policy
    }

    /// User fields some rule writes, in either direction (`extension` when an extension rule
    /// exists): what a changed mapping can change.
    pub fn user_mapped_fields(&self) -> BTreeSet<UserField> {
        let k = &self.users;
        let mut out: BTreeSet<UserField> = k
            .to_dingtalk
            .iter()
            .chain(&k.to_oa)
            .map(|s| s.target)
            .collect();
        if !k.ext_to_dingtalk.is_empty() || !k.ext_to_oa.is_empty() {
            out.insert(UserField::Extension);
        }
        out
    }

    /// Department fields some rule writes, in either direction: what a changed mapping can
    /// change.
    pub fn department_mapped_fields(&self) -> BTreeSet<directory_model::DeptField> {
        let k = &self.departments;
        k.to_dingtalk
            .iter()
            .chain(&k.to_oa)
            .map(|s| s.target)
            .collect()
    }

    /// Department fields whose mapped value is written only when the department is created.
    pub fn department_create_only(&self) -> &BTreeSet<directory_model::DeptField> {
        &self.departments.create_only
    }

    /// User fields whose mapped value is written only when the user is created.
    pub fn user_create_only(&self) -> &BTreeSet<UserField> {
        &self.users.create_only
    }

    /// User fields mapped into DingTalk with no inverse (read back from DingTalk unchanged).
    pub fn user_one_way_to_dingtalk(&self) -> &[UserField] {
        &self.users.one_way_to_dingtalk
    }

    /// Department fields mapped into DingTalk with no inverse.
    pub fn department_one_way_to_dingtalk(&self) -> &[directory_model::DeptField] {
        &self.departments.one_way_to_dingtalk
    }

    /// The fields tried, in order after the userid, to link users on a first import.
    pub fn soft_match(&self) -> &[UserField] {
        &self.soft_match
    }

    fn map<K: Kind>(
        &self,
        kind: &KindMapping<K>,
        source: &K,
        direction: Direction,
    ) -> Result<Mapped<K>, MapError> {
        let (steps, ext_steps) = match direction {
            Direction::ToDingTalk => (&kind.to_dingtalk, &kind.ext_to_dingtalk),
            Direction::ToOa => (&kind.to_oa, &kind.ext_to_oa),
        };
        let mut out = source.clone();
        // Built on first use: an identity-only mapping never pays for the CEL conversion.
        let mut ctx = None;
        for step in steps {
            let json = match &step.source {
                Source::Field(from) => source.field_json(*from),
                Source::Expr(expr) => {
                    let ctx = match &mut ctx {
                        Some(c) => c,
                        None => ctx.insert(context_for(&self.env, K::VAR, source, &expr.key)?),
                    };
                    to_json(&expr.eval(ctx, &self.limits)?, &step.key)?
                }
            };
            let got = short(&json);
            out.set_field(step.target, json).map_err(|e| MapError {
                key: step.key.clone(),
                reason: EvalError::WrongType {
                    expected: e.to_string(),
                    got,
                    target: K::field_name(step.target).to_owned(),
                },
            })?;
        }
        for step in ext_steps {
            let ctx = match &mut ctx {
                Some(c) => c,
                None => ctx.insert(context_for(&self.env, K::VAR, source, &step.expr.key)?),
            };
            let value = step.expr.eval(ctx, &self.limits)?;
            let Some(ext) = out.extension_mut() else {
                continue;
            };
            match value {
                Value::Null => {
                    ext.remove(&step.name);
                }
                Value::String(s) => {
                    ext.insert(step.name.clone(), s.as_str().to_owned());
                }
                other => {
                    return Err(step.expr.fail(EvalError::WrongType {
                        expected: "a string or null".into(),
                        got: describe(&other),
                        target: format!("extension.{}", step.name),
                    }));
                }
            }
        }
        Ok(Mapped {
            entity: out,
            create_only: kind.create_only.clone(),
            create_only_extension: kind.create_only_extension.clone(),
        })
    }
}

fn to_json(value: &Value, key: &str) -> Result<serde_json::Value, MapError> {
    value.json().map_err(|e| MapError {
        key: key.to_owned(),
        reason: EvalError::WrongType {
            expected: "a value with a JSON form".into(),
            got: describe(value),
            target: e.to_string(),
        },
    })
}

fn short(json: &serde_json::Value) -> String {
    let text = json.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn compile_kind<K: Kind>(config: &KindMappingConfig, c: &mut Compiler) -> KindMapping<K> {
    let mut kind = KindMapping::<K> {
        to_dingtalk: Vec::new(),
        to_oa: Vec::new(),
        ext_to_dingtalk: Vec::new(),
        ext_to_oa: Vec::new(),
        create_only: BTreeSet::new(),
        create_only_extension: BTreeSet::new(),
        one_way_to_dingtalk: Vec::new(),
        policy: MergePolicy::with_winner(config.winner.unwrap_or_default()),
    };
    let section = format!("mapping.{}", K::SECTION);
    for (name, rule) in &config.fields {
        let key = format!("{section}.fields.{name}");
        let Some(field) = K::field_by_name(name) else {
            c.problem(&key, unknown_field::<K>(name));
            continue;
        };
        if K::REFERENCES.contains(&name.as_str())
            && (rule.to_dingtalk.is_some() || rule.to_oa.is_some())
        {
            c.problem(
                &key,
                format!(
                    "`{name}` names other entities by id, which only the id map translates; \
                     it takes `owner` and `apply` but no expression"
                ),
            );
            continue;
        }
        for (direction, text) in [
            (Direction::ToDingTalk, &rule.to_dingtalk),
            (Direction::ToOa, &rule.to_oa),
        ] {
            let Some(text) = text else { continue };
            let key = format!("{key}.{}", direction.key());
            let source = match K::field_by_name(text.trim()) {
                Some(from) => Source::Field(from),
                None => match c.compile(&key, text, &[K::VAR]) {
                    Some(expr) => Source::Expr(expr),
                    None => continue,
                },
            };
            let step = FieldStep {
                target: field,
                key,
                source,
            };
            match direction {
                Direction::ToDingTalk => kind.to_dingtalk.push(step),
                Direction::ToOa => kind.to_oa.push(step),
            }
        }
        kind.policy.authority.insert(field, rule.owner);
        if rule.apply == Apply::OnCreate {
            kind.create_only.insert(field);
        }
    }
    // Identity steps (a field copied onto itself) do nothing; dropping them keeps the hot path
    // free of no-op work.
    kind.to_dingtalk
        .retain(|s| !matches!(s.source, Source::Field(f) if f == s.target));
    kind.to_oa
        .retain(|s| !matches!(s.source, Source::Field(f) if f == s.target));
    kind.one_way_to_dingtalk = kind
        .to_dingtalk
        .iter()
        .map(|s| s.target)
        .filter(|f| !kind.to_oa.iter().any(|s| s.target == *f))
        .collect();
    kind.policy
        .authority
        .retain(|_, a| *a != directory_model::Authority::Both);
    compile_extension::<K>(config, c, &section, &mut kind);
    kind
}

fn compile_extension<K: Kind>(
    config: &KindMappingConfig,
    c: &mut Compiler,
    section: &str,
    kind: &mut KindMapping<K>,
) {
    let has_extension = K::field_by_name("extension").is_some();
    for (name, rule) in &config.extension {
        let key = format!("{section}.extension.{name}");
        if !has_extension {
            c.problem(&key, format!("{} have no extension fields", K::SECTION));
            continue;
        }
        if let Some(text) = &rule.to_dingtalk {
            let key = format!("{key}.to_dingtalk");
            if let Some(expr) = c.compile(&key, text, &[K::VAR]) {
                kind.ext_to_dingtalk.push(ExtStep {
                    name: name.clone(),
                    expr,
                });
            }
        }
        if let Some(text) = &rule.to_oa {
            let key = format!("{key}.to_oa");
            if let Some(expr) = c.compile(&key, text, &[K::VAR]) {
                kind.ext_to_oa.push(ExtStep {
                    name: name.clone(),
                    expr,
                });
            }
        }
        if rule.apply == Apply::OnCreate {
            kind.create_only_extension.insert(name.clone());
        }
    }
}

fn compile_soft_match(config: &MappingConfig, c: &mut Compiler) -> Vec<UserField> {
    if config.departments.soft_match.is_some() {
        c.problem(
            "mapping.departments.soft_match",
            "soft matching applies to users only",
        );
    }
    let Some(names) = &config.users.soft_match else {
        return DEFAULT_SOFT_MATCH.to_vec();
    };
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match <User as Kind>::field_by_name(name) {
            Some(f) if !out.contains(&f) => out.push(f),
            Some(_) => c.problem(
                &format!("mapping.users.soft_match[{i}]"),
                format!("`{name}` is listed twice"),
            ),
            None => c.problem(
                &format!("mapping.users.soft_match[{i}]"),
                unknown_field::<User>(name),
            ),
        }
    }
    out
}

fn unknown_field<K: Kind>(name: &str) -> String {
    let known: Vec<&str> = K::all_fields().iter().map(|f| K::field_name(*f)).collect();
    format!(
        "`{name}` is not a field of {}; known: {}",
        K::SECTION,
        known.join(", ")
    )
}
