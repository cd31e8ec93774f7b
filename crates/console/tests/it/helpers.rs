//! A small in-memory `AdminBackend` with a believable directory, a clock the tests move, and
//! a cookie-keeping client that drives the router in process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use console::auth::SessionKey;
use console::auth::ThrottlePolicy;
use console::views::*;
use console::{AdminBackend, BackendError, Clock, ConsoleConfig, ConsoleUser, PasswordHash, Role};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Default)]
pub struct TestClock(pub AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

fn hash() -> PasswordHash {
    static HASH: OnceLock<PasswordHash> = OnceLock::new();
    HASH.get_or_init(|| console::hash_password(PASSWORD).expect("hash"))
        .clone()
}

/// The backend: fixed views, a record of performed actions, and switches for failures.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    pub performed: Mutex<Vec<(String, OperatorAction)>>,
    pub fail_overview: AtomicBool,
    /// Held deletions approved so far (the attention page drops them).
    pub approved: Mutex<Vec<String>>,
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

pub fn run_summary(id: &str, kind: RunKind, outcome: Option<Outcome>) -> RunSummary {
    RunSummary {
        id: id.to_owned(),
        kind,
        started_at: "2026-12-07T13:02:11Z".to_owned(),
        finished_at: outcome.map(|_| "2026-12-07T13:04:40Z".to_owned()),
        duration_ms: outcome.map(|_| 149_000),
        outcome,
        failure: (outcome == Some(Outcome::Partial))
            .then(|| "3 users failed on DingTalk (60121 user not found); see the log".to_owned()),
        counts: vec![
            SideCounts {
                side: Side::Oa,
                created: 12,
                changed: 340,
                deleted: 0,
                held: 0,
                failed: 0,
            },
            SideCounts {
                side: Side::DingTalk,
                created: 2,
                changed: 15,
                deleted: 1,
                held: 4,
                failed: 3,
            },
        ],
        dingtalk_calls: 1_204,
        throttles: 2,
        progress: outcome.is_none().then(|| Progress {
            done: 41_200,
            total: Some(100_000),
            stage: "crawling users".to_owned(),
        }),
        started_by: "schedule".to_owned(),
    }
}

impl MemoryBackend {
    fn user_rows(&self) -> Vec<UserRow> {
        let row = |id: &str, name: &str, userid: Option<&str>, mobile: &str, state| UserRow {
            id: id.to_owned(),
            name: name.to_owned(),
            userid: userid.map(str::to_owned),
            mobile: s(mobile),
            job_number: s(&format!("E{}", &id[2..])),
            email: s(&format!(
                "{}@example.com",
                name.to_lowercase().replace(' ', ".")
            )),
            departments: vec!["Engineering".to_owned()],
            state,
        };
        vec![
            row(
                "u-1001",
                "Li Wei",
                Some("liwei"),
                "13800000001",
                SyncState::InSync,
            ),
            row(
                "u-1002",
                "Zhang Min",
                Some("zhangmin"),
                "13800000002",
                SyncState::PendingPush,
            ),
            row(
                "u-1003",
                "Wang Fang",
                Some("wangfang"),
                "13800000003",
                SyncState::Conflicted,
            ),
            row(
                "u-1004",
                "Chen Jie",
                None,
                "13800000004",
                SyncState::DeadLettered,
            ),
            row(
                "u-1005",
                "Liu Yang",
                Some("liuyang"),
                "13800000005",
                SyncState::Held,
            ),
        ]
    }

    fn full_attention(&self) -> Attention {
        let approved = self.approved.lock().expect("lock").clone();
        let entries: Vec<HeldDeletion> = [
            ("h1-e1", "u-1005", "Liu Yang"),
            ("h1-e2", "u-1006", "Zhao Lei"),
        ]
        .into_iter()
        .filter(|(id, _, _)| !approved.contains(&(*id).to_owned()))
        .map(|(id, object, name)| HeldDeletion {
            entry_id: id.to_owned(),
            kind: ObjectKind::User,
            object_id: object.to_owned(),
            name: name.to_owned(),
            side: Side::DingTalk,
        })
        .collect();
        let holds = if entries.is_empty() {
            vec![]
        } else {
            vec![HeldDeletionGroup {
                hold_id: "h1".to_owned(),
                reason: "The reconcile at 13:02 wanted to delete 2 users on DingTalk; the threshold allows 1 without confirmation.".to_owned(),
                created_at: "2026-12-07T13:04:40Z".to_owned(),
                entries,
                more: 0,
            }]
        };
        Attention {
            holds,
            conflicts: vec![ConflictItem {
                id: "c1".to_owned(),
                kind: ObjectKind::User,
                object_id: "u-1003".to_owned(),
                name: "Wang Fang".to_owned(),
                field: "title".to_owned(),
                base: s("Engineer"),
                oa: s("Senior Engineer"),
                dingtalk: s("Staff Engineer"),
                result: s("Senior Engineer"),
                rule: "OA is authoritative for title".to_owned(),
            }],
            soft_matches: vec![SoftMatchItem {
                id: "m1".to_owned(),
                dingtalk_userid: "zhoujing01".to_owned(),
                dingtalk_name: "Zhou Jing".to_owned(),
                reason: "Two OA users share this DingTalk user's email; link one or create a new OA user.".to_owned(),
                candidates: vec![
                    SoftMatchCandidate { oa_id: "u-2001".to_owned(), name: "Zhou Jing".to_owned(), matched_on: "email".to_owned() },
                    SoftMatchCandidate { oa_id: "u-2002".to_owned(), name: "Zhou Jing (Sales)".to_owned(), matched_on: "email".to_owned() },
                ],
            }],
            dead_letters: vec![DeadLetterItem {
                id: "d1".to_owned(),
                kind: ObjectKind::User,
                object_id: "u-1004".to_owned(),
                name: "Chen Jie".to_owned(),
                operation: "create".to_owned(),
                errcode: 40103,
                errmsg: "mobile number already exists in this organisation".to_owned(),
                attempts: 5,
                last_attempt_at: "2026-12-07T12:58:03Z".to_owned(),
                blocked: vec![BlockedEntry {
                    id: "o-77".to_owned(),
                    kind: ObjectKind::User,
                    object_id: "u-1004".to_owned(),
                    operation: "update".to_owned(),
                }],
            }],
            mapping_change: None,
        }
    }
}

impl AdminBackend for MemoryBackend {
    async fn console_user(&self, name: &str) -> Result<Option<ConsoleUser>, BackendError> {
        let role = match name {
            "olga" => Role::Operator,
            "victor" => Role::Viewer,
            _ => return Ok(None),
        };
        Ok(Some(ConsoleUser {
            name: name.to_owned(),
            role,
            password_hash: hash(),
        }))
    }

    async fn overview(&self) -> Result<Overview, BackendError> {
        if self.fail_overview.load(Ordering::SeqCst) {
            let cause =
                std::io::Error::other("connection to postgres://dingsync:hunter2@db refused");
            return Err(BackendError::Internal(Box::new(cause)));
        }
        let budget = |api: &str, qps, rate, throttles| ApiBudget {
            api: api.to_owned(),
            qps_limit: qps,
            calls_per_sec: rate,
            throttles,
            retries: throttles * 2,
            faults: 0,
        };
        Ok(Overview {
            health: Check {
                ok: true,
                reason: "store reachable, workers running".to_owned(),
            },
            readiness: Check {
                ok: true,
                reason: "initial import done 2026-12-01".to_owned(),
            },
            budgets: vec![
                budget("user/list", 20.0, 14.2, 0),
                budget("department/listsub", 20.0, 3.1, 0),
                budget("user/update", 10.0, 9.4, 2),
            ],
            token: TokenState {
                valid: true,
                expires_in_secs: Some(5400),
                reason: String::new(),
            },
            events: EventChannel {
                mode: "stream".to_owned(),
                healthy: true,
                last_event_at: s("2026-12-07T14:41:09Z"),
                detail: "Stream connected since 09:12.".to_owned(),
            },
            backlogs: vec![
                Backlog {
                    queue: "inbox".to_owned(),
                    count: 0,
                    oldest_age_secs: None,
                },
                Backlog {
                    queue: "outbox".to_owned(),
                    count: 37,
                    oldest_age_secs: Some(42),
                },
                Backlog {
                    queue: "failed".to_owned(),
                    count: 1,
                    oldest_age_secs: Some(6300),
                },
            ],
            last_runs: vec![
                run_summary("r-42", RunKind::Reconcile, Some(Outcome::Partial)),
                run_summary("r-41", RunKind::Import, Some(Outcome::Ok)),
            ],
            attention_count: self.full_attention().count(),
        })
    }

    async fn attention_count(&self) -> Result<u64, BackendError> {
        Ok(self.full_attention().count())
    }

    async fn users(&self, query: &UserQuery) -> Result<UserList, BackendError> {
        let needle = query.q.clone().unwrap_or_default().to_lowercase();
        let rows: Vec<UserRow> = self
            .user_rows()
            .into_iter()
            .filter(|row| needle.is_empty() || row.name.to_lowercase().contains(&needle))
            .filter(|row| query.state.is_none_or(|state| row.state == state))
            .collect();
        Ok(UserList {
            total: rows.len() as u64,
            total_is_lower_bound: false,
            page: query.page,
            page_rows: 50,
            rows,
            department: query.department.as_ref().map(|id| DeptOption {
                id: id.clone(),
                name: "Engineering".to_owned(),
            }),
        })
    }

    async fn departments(&self, query: &DepartmentQuery) -> Result<DepartmentTree, BackendError> {
        let node = |id: &str, name: &str, parent: &str, members, subs, state| DepartmentNode {
            id: id.to_owned(),
            name: name.to_owned(),
            parent: Some(parent.to_owned()),
            dingtalk_id: s(&format!("10{members}")),
            members,
            sub_departments: subs,
            state,
        };
        let crumb = |id: &str, name: &str| DeptOption {
            id: id.to_owned(),
            name: name.to_owned(),
        };
        // The fake tree: Head office > Engineering > Platform, and Head office > Sales.
        let (path, members, nodes) = match query.under.as_deref() {
            None => (
                vec![],
                None,
                vec![node("d-1", "Head office", "1", 12, 2, SyncState::InSync)],
            ),
            Some("d-1") => (
                vec![crumb("d-1", "Head office")],
                Some(12),
                vec![
                    node("d-2", "Engineering", "d-1", 54, 1, SyncState::InSync),
                    node("d-4", "Sales", "d-1", 31, 0, SyncState::InSync),
                ],
            ),
            Some("d-2") => (
                vec![crumb("d-1", "Head office"), crumb("d-2", "Engineering")],
                Some(54),
                vec![node(
                    "d-3",
                    "Platform",
                    "d-2",
                    17,
                    0,
                    SyncState::PendingPush,
                )],
            ),
            Some(other) => {
                return Err(BackendError::NotFound {
                    what: "department",
                    id: other.to_owned(),
                });
            }
        };
        Ok(DepartmentTree {
            path,
            members,
            total: nodes.len() as u64,
            nodes,
            page: query.page,
            page_rows: 100,
        })
    }

    async fn roles(&self) -> Result<RoleTree, BackendError> {
        let role = |id: &str, name: &str, holders, state| RoleRow {
            id: id.to_owned(),
            name: name.to_owned(),
            dingtalk_id: s(&format!("9{id}")),
            holders,
            state,
        };
        Ok(RoleTree {
            groups: vec![RoleGroupRow {
                id: "7".to_owned(),
                name: "Positions".to_owned(),
                dingtalk_id: s("97"),
                state: SyncState::InSync,
                roles: vec![
                    role("71", "Team lead", 9, SyncState::InSync),
                    role("72", "Finance approver", 2, SyncState::PendingPush),
                ],
            }],
        })
    }

    async fn object(&self, kind: ObjectKind, id: &str) -> Result<ObjectDetail, BackendError> {
        if id != "u-1003" && id != "d-2" && id != "71" {
            return Err(BackendError::NotFound {
                what: kind.label(),
                id: id.to_owned(),
            });
        }
        Ok(ObjectDetail {
            kind,
            id: id.to_owned(),
            name: "Wang Fang".to_owned(),
            state: SyncState::Conflicted,
            fields: vec![
                FieldComparison::new("name", s("Wang Fang"), s("Wang Fang")),
                FieldComparison::new("title", s("Senior Engineer"), s("Staff Engineer")),
                FieldComparison::new("mobile", s("13800000003"), s("13800000003")),
                FieldComparison::new("email", s("wang.fang@example.com"), None),
            ],
            dingtalk_fetched_at: s("2026-12-07T14:42:00Z"),
            dingtalk_unavailable: None,
            mapping: IdMapping {
                oa_id: id.to_owned(),
                dingtalk_id: s("wangfang"),
                linked_at: s("2026-12-01T09:00:12Z"),
                linked_by: s("import (soft match on mobile)"),
            },
            timeline: vec![
                TimelineEntry {
                    at: "2026-12-07T14:30:02Z".to_owned(),
                    origin: "reconcile".to_owned(),
                    kind: TimelineKind::Merge,
                    summary: "Both sides changed the title since the last sync.".to_owned(),
                    merge: Some(MergeDecision {
                        field: "title".to_owned(),
                        base: s("Engineer"),
                        dingtalk: s("Staff Engineer"),
                        oa: s("Senior Engineer"),
                        result: s("Senior Engineer"),
                        rule: "OA is authoritative for title".to_owned(),
                    }),
                    answer: None,
                },
                TimelineEntry {
                    at: "2026-12-07T14:21:40Z".to_owned(),
                    origin: "dingtalk".to_owned(),
                    kind: TimelineKind::EventReceived,
                    summary: "user_modify_org: title changed to Staff Engineer".to_owned(),
                    merge: None,
                    answer: None,
                },
                TimelineEntry {
                    at: "2026-12-07T14:10:05Z".to_owned(),
                    origin: "pusher".to_owned(),
                    kind: TimelineKind::DingTalkAnswer,
                    summary: "user/update accepted".to_owned(),
                    merge: None,
                    answer: Some(DingTalkAnswer {
                        errcode: 0,
                        errmsg: "ok".to_owned(),
                    }),
                },
                TimelineEntry {
                    at: "2026-12-07T14:09:58Z".to_owned(),
                    origin: "oa-api".to_owned(),
                    kind: TimelineKind::OaWrite,
                    summary: "PATCH /users/u-1003: title Engineer → Senior Engineer".to_owned(),
                    merge: None,
                    answer: None,
                },
            ],
        })
    }

    async fn attention(&self) -> Result<Attention, BackendError> {
        Ok(self.full_attention())
    }

    async fn plan(&self, query: &PlanQuery) -> Result<PlanView, BackendError> {
        let change = |field: &str, old: Option<&str>, new: Option<&str>| FieldChange {
            field: field.to_owned(),
            old: old.map(str::to_owned),
            new: new.map(str::to_owned),
        };
        Ok(PlanView {
            generated_at: "2026-12-07T14:42:10Z".to_owned(),
            deletion_threshold: 1,
            ready: true,
            age_secs: 95,
            took_ms: 12_600,
            computing: None,
            error: None,
            page: query.page,
            page_rows: 200,
            entries_total: 4,
            deletions_total: 2,
            groups: vec![
                PlanGroup {
                    side: Side::DingTalk,
                    kind: ObjectKind::User,
                    total: 3,
                    entries: vec![
                        PlanEntry {
                            id: "p1".to_owned(),
                            object_id: "u-1002".to_owned(),
                            name: "Zhang Min".to_owned(),
                            op: PlanOp::Update,
                            changes: vec![change("title", Some("Analyst"), Some("Lead Analyst"))],
                        },
                        PlanEntry {
                            id: "p2".to_owned(),
                            object_id: "u-1006".to_owned(),
                            name: "Zhao Lei".to_owned(),
                            op: PlanOp::Delete,
                            changes: vec![],
                        },
                        PlanEntry {
                            id: "p3".to_owned(),
                            object_id: "u-1007".to_owned(),
                            name: "Sun Li".to_owned(),
                            op: PlanOp::Delete,
                            changes: vec![],
                        },
                    ],
                },
                PlanGroup {
                    side: Side::Oa,
                    kind: ObjectKind::Department,
                    total: 1,
                    entries: vec![PlanEntry {
                        id: "p4".to_owned(),
                        object_id: "d-5".to_owned(),
                        name: "Support".to_owned(),
                        op: PlanOp::Create,
                        changes: vec![
                            change("name", None, Some("Support")),
                            change("parent", None, Some("Head office")),
                        ],
                    }],
                },
            ],
        })
    }

    async fn runs(&self) -> Result<RunList, BackendError> {
        Ok(RunList {
            runs: vec![
                run_summary("r-43", RunKind::Import, None),
                run_summary("r-42", RunKind::Reconcile, Some(Outcome::Partial)),
                run_summary("r-41", RunKind::Import, Some(Outcome::Ok)),
                run_summary("r-40", RunKind::CatchUp, Some(Outcome::Failed)),
            ],
        })
    }

    async fn run(&self, id: &str) -> Result<RunDetail, BackendError> {
        if id != "r-42" && id != "r-43" {
            return Err(BackendError::NotFound {
                what: "run",
                id: id.to_owned(),
            });
        }
        let outcome = (id == "r-42").then_some(Outcome::Partial);
        let line = |at: &str, level: &str, message: &str| LogLine {
            at: at.to_owned(),
            level: level.to_owned(),
            message: message.to_owned(),
        };
        Ok(RunDetail {
            summary: run_summary(
                id,
                if outcome.is_some() {
                    RunKind::Reconcile
                } else {
                    RunKind::Import
                },
                outcome,
            ),
            log: vec![
                line(
                    "2026-12-07T13:02:11Z",
                    "info",
                    "reconcile started: scope all, threshold 1",
                ),
                line(
                    "2026-12-07T13:03:50Z",
                    "warn",
                    "held 2 deletions on DingTalk (over the threshold)",
                ),
                line(
                    "2026-12-07T13:04:39Z",
                    "error",
                    "user u-1004: DingTalk 60121 user not found; dead-lettered",
                ),
            ],
        })
    }

    async fn audit(&self, query: &AuditQuery) -> Result<AuditPage, BackendError> {
        let entry = |at: &str, actor: &str, origin: &str, id: &str, action: &str, detail: &str| {
            AuditEntry {
                at: at.to_owned(),
                actor: actor.to_owned(),
                origin: origin.to_owned(),
                object_kind: "user".to_owned(),
                object_id: id.to_owned(),
                action: action.to_owned(),
                detail: detail.to_owned(),
            }
        };
        let entries = vec![
            entry(
                "2026-12-07T14:12:00Z",
                "olga",
                "console",
                "u-1005",
                "reject deletion",
                "hold h0",
            ),
            entry(
                "2026-12-07T14:09:58Z",
                "hr-sync",
                "oa-api",
                "u-1003",
                "update",
                "title Engineer → Senior Engineer",
            ),
            entry(
                "2026-12-07T13:04:39Z",
                "reconcile",
                "reconcile",
                "u-1004",
                "dead-letter",
                "DingTalk 60121",
            ),
        ];
        let entries = entries
            .into_iter()
            .filter(|e| query.actor.as_ref().is_none_or(|actor| &e.actor == actor))
            .collect();
        Ok(AuditPage {
            entries,
            truncated: false,
        })
    }

    async fn settings(&self) -> Result<SettingsView, BackendError> {
        let plain = |key: &str, value: &str, source| Setting {
            key: key.to_owned(),
            value: SettingValue::Plain {
                value: value.to_owned(),
            },
            source,
        };
        Ok(SettingsView {
            entries: vec![
                plain("dingtalk.app_key", "dingabc123", SettingSource::File),
                Setting {
                    key: "dingtalk.app_secret".to_owned(),
                    value: SettingValue::Secret { set: true },
                    source: SettingSource::Environment,
                },
                // Mislabelled by the backend on purpose: the console must still hide them.
                plain(
                    "callback.aes_key",
                    "AESKEY-SHOULD-NEVER-SHOW",
                    SettingSource::File,
                ),
                plain(
                    "database.url",
                    "postgres://dingsync:DBPASS-NEVER@db/dingsync",
                    SettingSource::Environment,
                ),
                plain("sync.deletion_threshold", "1", SettingSource::Default),
                plain("history.keep_days", "180", SettingSource::Default),
            ],
        })
    }

    async fn perform(
        &self,
        actor: &Actor,
        action: &OperatorAction,
    ) -> Result<ActionOutcome, BackendError> {
        if let OperatorAction::ApplyPlan {
            entries,
            confirm_deletions: false,
        } = action
        {
            let deletes = entries.as_ref().map_or(2, |e| {
                e.iter().filter(|id| *id == "p2" || *id == "p3").count()
            });
            if deletes > 1 {
                return Err(BackendError::Refused(format!(
                    "{deletes} deletions exceed the threshold of 1; confirm them to apply"
                )));
            }
        }
        if let OperatorAction::DecideDeletion {
            entry: Some(entry),
            decision: DeletionDecision::Approve,
            ..
        } = action
        {
            self.approved.lock().expect("lock").push(entry.clone());
        }
        self.performed
            .lock()
            .expect("lock")
            .push((actor.name.clone(), action.clone()));
        Ok(ActionOutcome {
            message: format!("{} ({}).", action.describe(), actor.name),
        })
    }
}

pub struct TestApp {
    pub router: Router,
    pub backend: Arc<MemoryBackend>,
    pub clock: Arc<TestClock>,
}

pub fn config(clock: Arc<TestClock>) -> ConsoleConfig {
    let mut config = ConsoleConfig::new(SessionKey::from_bytes(&[42u8; 32]).expect("key"));
    config.secure_cookies = false;
    config.idle_timeout_secs = 600;
    config.throttle = ThrottlePolicy {
        max_failures: 3,
        window_secs: 300,
        lockout_secs: 600,
        max_keys: 1000,
    };
    config.clock = clock;
    config
}

pub fn app() -> TestApp {
    let backend = Arc::new(MemoryBackend::default());
    let clock = Arc::new(TestClock(AtomicU64::new(1_800_000_000)));
    let router = console::router(backend.clone(), config(clock.clone()));
    TestApp {
        router,
        backend,
        clock,
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// A browser in miniature: keeps cookies between requests.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Client<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Client {
            app,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Reply {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = request
            .header(header::COOKIE, cookie)
            .body(body)
            .expect("request");
        let response = self
            .app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect();
        for line in &set_cookies {
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
            .await
            .expect("body");
        Reply {
            status,
            location,
            set_cookies,
            body: String::from_utf8(bytes.to_vec()).expect("utf-8"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Request::get(path), Body::empty()).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(body)).await
    }

    pub async fn post_json(&mut self, path: &str, csrf: &str, json: &str) -> Reply {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", csrf);
        self.send(request, Body::from(json.to_owned())).await
    }

    /// The `csrf` hidden field of the last page.
    pub fn csrf_in(body: &str) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = body.find(marker).expect("page has a csrf field") + marker.len();
        body[start..].split('"').next().expect("value").to_owned()
    }

    /// Signs in through the form; panics unless it worked.
    pub async fn sign_in(&mut self, name: &str) -> String {
        let form = self.get("/console/login").await;
        let csrf = Self::csrf_in(&form.body);
        let reply = self
            .post_form(
                "/console/login",
                &[("username", name), ("password", PASSWORD), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "sign-in failed: {}",
            reply.body
        );
        let page = self.get("/console").await;
        assert_eq!(page.status, StatusCode::OK);
        Self::csrf_in(&page.body)
    }
}
