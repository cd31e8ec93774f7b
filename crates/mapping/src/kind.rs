//! What the mapping needs to know about an entity kind: its CEL variable name, its config
//! section, and how to write one field from a JSON value.
//!
//! Writing goes through serde on purpose: a CEL result becomes JSON and is deserialized into the
//! field's own type, so an expression that yields the wrong shape is a typed error naming the
//! field, and the CEL view of an entity is exactly its serde (JSON) form.

use std::collections::BTreeMap;

use directory_model::{Department, DeptField, FieldAccess, User, UserField};
use serde::Serialize;
use serde_json::{Value as Json, from_value};

/// An entity kind the mapping handles (users and departments).
pub(crate) trait Kind: FieldAccess + Serialize {
    /// The CEL variable the entity is bound to.
    const VAR: &'static str;
    /// The config section under `[mapping]` and `[scope.*]`.
    const SECTION: &'static str;
    /// Fields that name other entities by id: translated by the engine's id map, so a mapping
    /// may set their owner and `apply` but gives them no expression.
    const REFERENCES: &'static [&'static str];

    /// Overwrites `field` with `value`, which must have the field's serde shape.
    fn set_field(&mut self, field: Self::Field, value: Json) -> Result<(), serde_json::Error>;

    /// The `extension` map, for kinds that have one.
    fn extension_mut(&mut self) -> Option<&mut BTreeMap<String, String>>;

    /// The field with this serde name.
    fn field_by_name(name: &str) -> Option<Self::Field> {
        Self::all_fields()
            .iter()
            .copied()
            .find(|f| Self::field_name(*f) == name)
    }
}

impl Kind for User {
    const VAR: &'static str = "user";
    const SECTION: &'static str = "users";
    const REFERENCES: &'static [&'static str] = &["main_department", "manager"];

    fn set_field(&mut self, field: UserField, v: Json) -> Result<(), serde_json::Error> {
        match field {
            UserField::Name => self.name = from_value(v)?,
            UserField::Departments => self.departments = from_value(v)?,
            UserField::MainDepartment => self.main_department = from_value(v)?,
            UserField::Manager => self.manager = from_value(v)?,
            UserField::JobNumber => self.job_number = from_value(v)?,
            UserField::Mobile => self.mobile = from_value(v)?,
            UserField::Email => self.email = from_value(v)?,
            UserField::OrgEmail => self.org_email = from_value(v)?,
            UserField::Telephone => self.telephone = from_value(v)?,
            UserField::WorkPlace => self.work_place = from_value(v)?,
            UserField::HiredDateMs => self.hired_date_ms = from_value(v)?,
            UserField::Remark => self.remark = from_value(v)?,
            UserField::Extension => self.extension = from_value(v)?,
            UserField::State => self.state = from_value(v)?,
        }
        Ok(())
    }

    fn extension_mut(&mut self) -> Option<&mut BTreeMap<String, String>> {
        Some(&mut self.extension)
    }
}

impl Kind for Department {
    const VAR: &'static str = "dept";
    const SECTION: &'static str = "departments";
    const REFERENCES: &'static [&'static str] = &["parent", "managers", "source_identifier"];

    fn set_field(&mut self, field: DeptField, v: Json) -> Result<(), serde_json::Error> {
        match field {
            DeptField::Name => self.name = from_value(v)?,
            DeptField::Parent => self.parent = from_value(v)?,
            DeptField::Order => self.order = from_value(v)?,
            DeptField::Managers => self.managers = from_value(v)?,
            DeptField::SourceIdentifier => self.source_identifier = from_value(v)?,
            DeptField::Hide => self.hide = from_value(v)?,
            DeptField::Outer => self.outer = from_value(v)?,
        }
        Ok(())
    }

    fn extension_mut(&mut self) -> Option<&mut BTreeMap<String, String>> {
        None
    }
}
