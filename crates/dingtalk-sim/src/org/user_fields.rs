//! The user fields that create and update share: how each is read, checked (the limits of the
//! create page, §2.2 of `dingtalk-api.md`; uniqueness of email and telephone) and written onto
//! a user.
//!
//! An optional text field given as an empty string counts as "not given" unless it is named in
//! `force_update_fields`, which clears it; that is how DingTalk's update reads empty values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Org, User, char_len};
use crate::error::{Outcome, Rejection};
use crate::params::Params;

/// A user is in at most this many departments (60110).
pub(super) const MAX_DEPTS_PER_USER: usize = 100;

/// The answer for a userid that names no user.
pub(super) fn user_not_found() -> Rejection {
    Rejection::new(60121, "找不到该用户")
}
/// Splits a mobile number into (state code, national number), or `None` when malformed.
/// Mainland numbers are 11 digits starting with 1; others are written `+cc-number`.
pub(crate) fn parse_mobile(raw: &str) -> Option<(String, String)> {
    let raw = raw.trim();
    let mainland =
        |n: &str| n.len() == 11 && n.starts_with('1') && n.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = raw.strip_prefix('+') {
        let (cc, number) = rest.split_once('-')?;
        let cc_ok = (1..=4).contains(&cc.len()) && cc.bytes().all(|b| b.is_ascii_digit());
        let number_ok =
            (4..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
        if !cc_ok || !number_ok || (cc == "86" && !mainland(number)) {
            return None;
        }
        return Some((cc.to_owned(), number.to_owned()));
    }
    mainland(raw).then(|| ("86".to_owned(), raw.to_owned()))
}

/// The uniqueness key of a mobile number.
pub(crate) fn mobile_key(state_code: &str, mobile: &str) -> String {
    format!("{state_code}-{mobile}")
}

pub(super) fn check_userid(userid: &str) -> Outcome<()> {
    let ok = (1..=64).contains(&userid.len())
        && userid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(40003, "不合法的UserID"))
    }
}

pub(super) fn check_email(email: &str) -> Outcome<()> {
    let ok = char_len(email) <= 50
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(60105, "邮箱不合法"))
    }
}

/// How an update treats one optional text field: leave it, clear it, or set it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Edit<T> {
    Keep,
    Clear,
    Set(T),
}

impl<T> Edit<T> {
    pub(super) fn apply(self, target: &mut Option<T>) {
        match self {
            Edit::Keep => {}
            Edit::Clear => *target = None,
            Edit::Set(v) => *target = Some(v),
        }
    }
}

/// Reads an optional text field with a length limit.
pub(super) fn text_field(
    p: &Params,
    name: &str,
    max: usize,
    code: i64,
    force: &BTreeSet<String>,
) -> Outcome<Edit<String>> {
    match p.str(name) {
        Some(v) if !v.is_empty() => {
            if char_len(&v) > max {
                Err(Rejection::new(code, format!("参数不合法 {name}")))
            } else {
                Ok(Edit::Set(v))
            }
        }
        _ if force.contains(name) => Ok(Edit::Clear),
        _ => Ok(Edit::Keep),
    }
}

/// The user fields that create and update share, parsed and checked against the org.
#[derive(Debug)]
pub(super) struct UserFields {
    pub(super) name: Edit<String>,
    pub(super) telephone: Edit<String>,
    pub(super) job_number: Edit<String>,
    pub(super) title: Edit<String>,
    pub(super) email: Edit<String>,
    pub(super) org_email: Edit<String>,
    pub(super) work_place: Edit<String>,
    pub(super) remark: Edit<String>,
    pub(super) login_email: Edit<String>,
    pub(super) manager_userid: Edit<String>,
    pub(super) dept_ids: Option<Vec<i64>>,
    pub(super) dept_order: Option<BTreeMap<i64, i64>>,
    pub(super) dept_title: Option<BTreeMap<i64, String>>,
    pub(super) extension: Option<Map<String, Value>>,
    pub(super) hired_date: Edit<i64>,
    pub(super) hide_mobile: Option<bool>,
    pub(super) senior: Option<bool>,
}

impl Org {
    /// Parses and checks the shared fields; `me` is the userid being updated (None on create).
    /// The checks run in DingTalk's order, so the first failing field is the one it names.
    pub(super) fn user_fields(&self, p: &Params, me: Option<&str>) -> Outcome<UserFields> {
        let force: BTreeSet<String> = p
            .str_list("force_update_fields")?
            .unwrap_or_default()
            .into_iter()
            .collect();
        let name = match p.str("name") {
            Some(v) if !v.trim().is_empty() => {
                if char_len(&v) > 80 {
                    return Err(Rejection::new(60112, "用户名称不合法"));
                }
                Edit::Set(v)
            }
            _ => Edit::Keep,
        };
        let email = self.email_field(p, me, &force)?;
        let manager_userid = self.manager_field(p, me, &force)?;
        let dept_ids = self.dept_ids_field(p)?;
        let (dept_order, dept_title) = per_dept_fields(p)?;
        let extension = extension_field(p)?;
        let hired_date = match p.i64("hired_date")? {
            Some(ms) => Edit::Set(ms),
            None if force.contains("hired_date") => Edit::Clear,
            None => Edit::Keep,
        };
        let telephone = self.telephone_field(p, me, &force)?;
        Ok(UserFields {
            name,
            telephone,
            job_number: text_field(p, "job_number", 50, 60123, &force)?,
            title: text_field(p, "title", 200, 40035, &force)?,
            email,
            org_email: text_field(p, "org_email", 100, 40035, &force)?,
            work_place: text_field(p, "work_place", 100, 40035, &force)?,
            remark: text_field(p, "remark", 2000, 40035, &force)?,
            login_email: text_field(p, "login_email", 100, 40035, &force)?,
            manager_userid,
            dept_ids,
            dept_order,
            dept_title,
            extension,
            hired_date,
            hide_mobile: p.bool("hide_mobile")?,
            senior: p.bool("senior_mode")?,
        })
    }

    /// `email`: well-formed and not another user's (case-insensitively).
    fn email_field(
        &self,
        p: &Params,
        me: Option<&str>,
        force: &BTreeSet<String>,
    ) -> Outcome<Edit<String>> {
        let email = text_field(p, "email", 50, 60105, force)?;
        if let Edit::Set(email) = &email {
            check_email(email)?;
            if let Some(owner) = self.emails.get(&email.to_lowercase())
                && Some(owner.as_str()) != me
            {
                return Err(Rejection::new(60106, "邮箱已存在"));
            }
        }
        Ok(email)
    }

    /// `manager_userid`: an existing user other than the one being changed.
    fn manager_field(
        &self,
        p: &Params,
        me: Option<&str>,
        force: &BTreeSet<String>,
    ) -> Outcome<Edit<String>> {
        let manager_userid = text_field(p, "manager_userid", 64, 40003, force)?;
        if let Edit::Set(manager) = &manager_userid {
            if Some(manager.as_str()) == me {
                return Err(Rejection::param("manager_userid"));
            }
            if !self.users.contains_key(manager) {
                return Err(user_not_found());
            }
        }
        Ok(manager_userid)
    }

    /// `dept_id_list`: at most [`MAX_DEPTS_PER_USER`] existing departments (empty = not given).
    fn dept_ids_field(&self, p: &Params) -> Outcome<Option<Vec<i64>>> {
        let dept_ids = p.i64_list("dept_id_list")?.filter(|l| !l.is_empty());
        if let Some(ids) = &dept_ids {
            if ids.len() > MAX_DEPTS_PER_USER {
                return Err(Rejection::new(60110, "部门个数超出限制"));
            }
            if ids.iter().any(|d| !self.depts.contains_key(d)) {
                return Err(Rejection::new(60003, "部门不存在"));
            }
            for d in ids {
                self.refuse_union_dept(*d)?;
            }
        }
        Ok(dept_ids)
    }

    /// `telephone`: not another user's. The create page says the telephone is unique too; no
    /// error code is documented.
    fn telephone_field(
        &self,
        p: &Params,
        me: Option<&str>,
        force: &BTreeSet<String>,
    ) -> Outcome<Edit<String>> {
        let telephone = text_field(p, "telephone", 50, 40035, force)?;
        if let Edit::Set(tel) = &telephone
            && let Some(owner) = self.telephones.get(tel)
            && Some(owner.as_str()) != me
        {
            return Err(Rejection::new(40035, "分机号已存在"));
        }
        Ok(telephone)
    }
}

/// Per-department order and title, as maps keyed by department.
type PerDept = (Option<BTreeMap<i64, i64>>, Option<BTreeMap<i64, String>>);

/// `dept_order_list` and `dept_title_list`.
fn per_dept_fields(p: &Params) -> Outcome<PerDept> {
    let dept_order = match p.json("dept_order_list")? {
        None => None,
        Some(v) => Some(parse_pairs(&v, "dept_order_list", "order", |x| {
            x.as_i64().or_else(|| x.as_str()?.parse().ok())
        })?),
    };
    let dept_title = match p.json("dept_title_list")? {
        None => None,
        Some(v) => Some(parse_pairs(&v, "dept_title_list", "title", |x| {
            x.as_str().filter(|t| char_len(t) <= 200).map(str::to_owned)
        })?),
    };
    Ok((dept_order, dept_title))
}

/// `extension`: a JSON object of at most 2000 characters.
fn extension_field(p: &Params) -> Outcome<Option<Map<String, Value>>> {
    match p.json("extension")? {
        None => Ok(None),
        Some(Value::Object(map)) => {
            if Value::Object(map.clone()).to_string().chars().count() > 2000 {
                return Err(Rejection::new(60122, "不合法的扩展属性"));
            }
            Ok(Some(map))
        }
        Some(_) => Err(Rejection::new(60122, "不合法的扩展属性")),
    }
}

/// Checks that per-department entries only name departments the user is in.
pub(super) fn check_pairs_within<T>(
    pairs: &Option<BTreeMap<i64, T>>,
    depts: &[i64],
    name: &str,
) -> Outcome<()> {
    match pairs {
        Some(map) if map.keys().any(|d| !depts.contains(d)) => Err(Rejection::param(name)),
        _ => Ok(()),
    }
}

/// Parses `[{dept_id, <key>}]` into a map, rejecting malformed entries.
pub(super) fn parse_pairs<T>(
    v: &Value,
    name: &str,
    key: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Outcome<BTreeMap<i64, T>> {
    let items = v.as_array().ok_or_else(|| Rejection::param(name))?;
    items
        .iter()
        .map(|item| {
            let dept = item
                .get("dept_id")
                .and_then(|d| d.as_i64().or_else(|| d.as_str()?.parse().ok()))
                .ok_or_else(|| Rejection::param(name))?;
            let value = item
                .get(key)
                .and_then(&read)
                .ok_or_else(|| Rejection::param(name))?;
            Ok((dept, value))
        })
        .collect()
}

/// The ids in their first order, each once.
pub(super) fn dedup(ids: Vec<i64>) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|d| seen.insert(*d)).collect()
}

/// Writes parsed fields onto a user; `ext_append` merges `extension` instead of replacing it.
pub(super) fn apply_fields(user: &mut User, f: UserFields, ext_append: bool) {
    if let Edit::Set(name) = f.name {
        user.name = name;
    }
    f.telephone.apply(&mut user.telephone);
    f.job_number.apply(&mut user.job_number);
    f.title.apply(&mut user.title);
    f.email.apply(&mut user.email);
    f.org_email.apply(&mut user.org_email);
    f.work_place.apply(&mut user.work_place);
    f.remark.apply(&mut user.remark);
    f.login_email.apply(&mut user.login_email);
    f.manager_userid.apply(&mut user.manager_userid);
    f.hired_date.apply(&mut user.hired_date);
    if let Some(order) = f.dept_order {
        user.dept_order = order;
    }
    if let Some(title) = f.dept_title {
        user.dept_title = title;
    }
    if let Some(ext) = f.extension {
        match (&mut user.extension, ext_append) {
            (Some(current), true) => current.extend(ext),
            _ => user.extension = Some(ext),
        }
    }
    if let Some(v) = f.hide_mobile {
        user.hide_mobile = v;
    }
    if let Some(v) = f.senior {
        user.senior = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_parse_mainland_and_international() {
        assert_eq!(
            parse_mobile("13800000000"),
            Some(("86".into(), "13800000000".into()))
        );
        assert_eq!(
            parse_mobile("+852-91234567"),
            Some(("852".into(), "91234567".into()))
        );
        assert_eq!(
            parse_mobile("+86-13800000000"),
            Some(("86".into(), "13800000000".into()))
        );
        for bad in [
            "1380000000",
            "23800000000",
            "+86-1234",
            "abc",
            "+852:1234",
            "",
        ] {
            assert_eq!(parse_mobile(bad), None, "{bad}");
        }
    }
}
