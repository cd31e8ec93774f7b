//! The askama page types: one struct per template in `templates/`, each holding the page
//! chrome (header and navigation) and the view it renders. Templates are compiled into the
//! binary and HTML-escape every value by default.

use askama::Template;

use crate::views::{
    Attention, AuditPage, AuditQuery, DepartmentTree, ObjectDetail, Overview, PlanView, RoleTree,
    RunDetail, RunList, SettingsView, SyncState, UserList, UserQuery,
};

/// What every signed-in page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user: String,
    pub role: &'static str,
    /// Whether the user may act; pages hide action buttons from viewers (the server refuses
    /// them anyway).
    pub may_act: bool,
    /// The navigation entry to mark current.
    pub active: &'static str,
    pub attention: u64,
    /// The CSRF token every form carries.
    pub csrf: String,
    /// A one-time message from the last action.
    pub notice: Option<String>,
    /// The page's own path, for forms to come back to.
    pub here: String,
}

impl Chrome {
    /// Whether the page is in the directory's `tab` (`users`, `departments` or `roles`), so
    /// the navigation marks the sub-entry too.
    pub fn in_tab(&self, tab: &str) -> bool {
        let path = self.here.split('?').next().unwrap_or_default();
        let prefixes: &[&str] = match tab {
            "users" => &["/console/users"],
            "departments" => &["/console/departments"],
            "roles" => &["/console/roles", "/console/role-groups"],
            _ => &[],
        };
        prefixes.iter().any(|p| {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// Template helpers.
pub mod filters {
    use std::fmt::Display;

    /// An optional value, or an em dash when absent.
    pub fn dash<T: Display>(value: &Option<T>, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(value
            .as_ref()
            .map_or_else(|| "—".to_owned(), ToString::to_string))
    }

    /// A key as words (`job_number` → `job number`).
    pub fn words(key: &str, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(key.replace('_', " "))
    }

    /// Seconds as a short age ("42 s", "5 min", "3 h", "2 d").
    pub fn age(secs: &u64, _: &dyn askama::Values) -> askama::Result<String> {
        let secs = *secs;
        Ok(match secs {
            0..=59 => format!("{secs} s"),
            60..=3599 => format!("{} min", secs / 60),
            3600..=86_399 => format!("{} h", secs / 3600),
            _ => format!("{} d", secs / 86_400),
        })
    }
}

#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// `None` when nobody is signed in: the page is then shown without navigation.
    pub chrome: Option<Chrome>,
    pub status: u16,
    pub title: String,
    pub message: String,
}

#[derive(Debug, Template)]
#[template(path = "overview.html")]
pub struct OverviewPage<'a> {
    pub chrome: Chrome,
    pub view: &'a Overview,
}

#[derive(Debug, Template)]
#[template(path = "users.html")]
pub struct UsersPage<'a> {
    pub chrome: Chrome,
    pub view: &'a UserList,
    pub query: &'a UserQuery,
    pub states: [SyncState; 5],
}

impl UsersPage<'_> {
    pub fn q(&self) -> &str {
        self.query.q.as_deref().unwrap_or_default()
    }

    /// The department filter's text as typed.
    pub fn department(&self) -> &str {
        self.query.department.as_deref().unwrap_or_default()
    }

    pub fn state_selected(&self, state: &SyncState) -> bool {
        self.query.state == Some(*state)
    }

    /// The same search on another page.
    fn page_href(&self, page: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(q) = self.query.q.as_deref().filter(|q| !q.is_empty()) {
            query.append_pair("q", q);
        }
        if let Some(d) = self.query.department.as_deref().filter(|d| !d.is_empty()) {
            query.append_pair("department", d);
        }
        if let Some(state) = self.query.state {
            query.append_pair("state", state.slug());
        }
        query.append_pair("page", &page.to_string());
        format!("/console/users?{}", query.finish())
    }

    /// The previous page's link, on every page but the first.
    pub fn prev_href(&self) -> Option<String> {
        (self.view.page > 0).then(|| self.page_href(self.view.page - 1))
    }

    /// The next page's link, when more rows match.
    pub fn next_href(&self) -> Option<String> {
        let shown = u64::from(self.view.page) * u64::from(self.view.page_rows)
            + self.view.rows.len() as u64;
        (self.view.page_rows > 0 && shown < self.view.total)
            .then(|| self.page_href(self.view.page + 1))
    }

    /// The 1-based number of the first row shown.
    pub fn first_row(&self) -> u64 {
        u64::from(self.view.page) * u64::from(self.view.page_rows) + 1
    }

    /// The 1-based number of the last row shown.
    pub fn last_row(&self) -> u64 {
        u64::from(self.view.page) * u64::from(self.view.page_rows) + self.view.rows.len() as u64
    }
}

#[derive(Debug, Template)]
#[template(path = "departments.html")]
pub struct DepartmentsPage<'a> {
    pub chrome: Chrome,
    pub view: &'a DepartmentTree,
}

impl DepartmentsPage<'_> {
    /// This level on another page.
    fn page_href(&self, page: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(current) = self.view.current() {
            query.append_pair("under", &current.id);
        }
        query.append_pair("page", &page.to_string());
        format!("/console/departments?{}", query.finish())
    }

    /// The previous page's link, on every page but the first.
    pub fn prev_href(&self) -> Option<String> {
        (self.view.page > 0).then(|| self.page_href(self.view.page - 1))
    }

    /// The next page's link, when the level has more departments.
    pub fn next_href(&self) -> Option<String> {
        let shown = u64::from(self.view.page) * u64::from(self.view.page_rows)
            + self.view.nodes.len() as u64;
        (self.view.page_rows > 0 && shown < self.view.total)
            .then(|| self.page_href(self.view.page + 1))
    }

    /// The 1-based numbers of the first and last rows shown.
    pub fn rows_shown(&self) -> (u64, u64) {
        let first = u64::from(self.view.page) * u64::from(self.view.page_rows);
        (first + 1, first + self.view.nodes.len() as u64)
    }
}

#[derive(Debug, Template)]
#[template(path = "roles.html")]
pub struct RolesPage<'a> {
    pub chrome: Chrome,
    pub view: &'a RoleTree,
}

#[derive(Debug, Template)]
#[template(path = "object.html")]
pub struct ObjectPage<'a> {
    pub chrome: Chrome,
    pub view: &'a ObjectDetail,
}

#[derive(Debug, Template)]
#[template(path = "attention.html")]
pub struct AttentionPage<'a> {
    pub chrome: Chrome,
    pub view: &'a Attention,
}

#[derive(Debug, Template)]
#[template(path = "plan.html")]
pub struct PlanPage<'a> {
    pub chrome: Chrome,
    pub view: &'a PlanView,
}

#[derive(Debug, Template)]
#[template(path = "runs.html")]
pub struct RunsPage<'a> {
    pub chrome: Chrome,
    pub view: &'a RunList,
}

#[derive(Debug, Template)]
#[template(path = "run.html")]
pub struct RunPage<'a> {
    pub chrome: Chrome,
    pub view: &'a RunDetail,
}

#[derive(Debug, Template)]
#[template(path = "audit.html")]
pub struct AuditPageView<'a> {
    pub chrome: Chrome,
    pub view: &'a AuditPage,
    pub query: &'a AuditQuery,
}

impl AuditPageView<'_> {
    pub fn field<'q>(&self, value: &'q Option<String>) -> &'q str {
        value.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Template)]
#[template(path = "settings.html")]
pub struct SettingsPage<'a> {
    pub chrome: Chrome,
    pub view: &'a SettingsView,
}
