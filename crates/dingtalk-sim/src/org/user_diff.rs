//! The `diffInfo` of a `user_modify_org` event: what changed in the user's profile.
//!
//! The event pages (`dingtalk-api.md` §6(c)) list `diffInfo` as one object
//! `{userid, prev: {…}, curr: {…}}` whose `prev`/`curr` hold the changed profile fields, named
//! `name, managerUserid, hiredDate, telephone, email, jobNumber, workPlace` (third-party code
//! also sees `remark`, included here). The simulator follows the documented *object* shape (a
//! third-party client models it as an array: UNCONFIRMED), so each modify event names one user.
//! A field that is cleared shows as `""` on the side where it has no value; changes outside these
//! fields (departments, order, title, extension) leave `prev` and `curr` empty.

use serde_json::{Map, Value, json};

use super::User;

/// The profile fields `diffInfo` reports, with how to read each from a user.
fn profile(u: &User) -> [(&'static str, Value); 8] {
    let text = |v: &Option<String>| json!(v.clone().unwrap_or_default());
    [
        ("name", json!(u.name)),
        ("managerUserid", text(&u.manager_userid)),
        ("hiredDate", u.hired_date.map_or(json!(""), |d| json!(d))),
        ("telephone", text(&u.telephone)),
        ("email", text(&u.email)),
        ("jobNumber", text(&u.job_number)),
        ("workPlace", text(&u.work_place)),
        ("remark", text(&u.remark)),
    ]
}

/// `diffInfo` for a user who changed from `old` to `new`.
pub(crate) fn diff_info(old: &User, new: &User) -> Value {
    let mut prev = Map::new();
    let mut curr = Map::new();
    for ((key, before), (_, after)) in profile(old).into_iter().zip(profile(new)) {
        if before != after {
            prev.insert(key.to_owned(), before);
            curr.insert(key.to_owned(), after);
        }
    }
    json!({"userid": new.userid, "prev": prev, "curr": curr})
}
