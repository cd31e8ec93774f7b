//! The table of the `/_sim` admin routes: method, path and what each does.
//!
//! It is the one list of them: the crate docs point here, `dingsync sim --help` and the
//! simulator's start banner print it ([`admin_routes_help`]), and a test calls every entry on a
//! running simulator, so a route added to a router without a line here (or a line whose route is
//! gone) is noticed.

/// One admin route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminRoute {
    /// HTTP method.
    pub method: &'static str,
    /// Path, with `{id}`-style placeholders and optional query parameters in `[...]`.
    pub path: &'static str,
    /// What it does.
    pub what: &'static str,
}

const ADMIN_ROUTES: &[AdminRoute] = &[
    AdminRoute {
        method: "GET",
        path: "/_sim/state",
        what: "the whole org: departments, users, departed userids, role groups, roles, memberships",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/calls",
        what: "per-API call counts (calls, ok, errors, throttled = 90018, faulted) and totals",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/calls/log",
        what: "the newest calls (up to 20,000) in arrival order: path, userid or dept_id, and the positions in one sequence at which each started and was answered (after the latency), so overlap is read without timing",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/calls/reset",
        what: "zero the counts and clear the call log",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/settings",
        what: "read the test knobs qps, latency_ms, fault_rate, token_ttl_secs, slow_answer_ms (defaults are DingTalk's: 20 calls/s per API, no faults, 7200 s tokens, slow answers past the 3 s gateway timeout)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/settings",
        what: "change any of those knobs",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/tokens/expire",
        what: "every issued access token stops working now",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/events[?after=N]",
        what: "every change so far as a contacts event (id, event_type, origin, time_ms, data)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/depts",
        what: "create a department (body as department/create)",
    },
    AdminRoute {
        method: "PATCH",
        path: "/_sim/depts/{id}",
        what: "change or move a department (body as department/update)",
    },
    AdminRoute {
        method: "DELETE",
        path: "/_sim/depts/{id}",
        what: "remove a department",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/users",
        what: "add a user (body as v2/user/create)",
    },
    AdminRoute {
        method: "PATCH",
        path: "/_sim/users/{userid}",
        what: "change a user (body as v2/user/update; dept_id_list moves them)",
    },
    AdminRoute {
        method: "DELETE",
        path: "/_sim/users/{userid}",
        what: "the user leaves the org",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/users/{userid}/rehire",
        what: "a user who left comes back (optional dept_id_list)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/role-groups",
        what: "add a role group ({\"name\"})",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/roles",
        what: "add a role ({\"roleName\",\"groupId\"})",
    },
    AdminRoute {
        method: "PATCH",
        path: "/_sim/roles/{id}",
        what: "rename a role ({\"roleName\"})",
    },
    AdminRoute {
        method: "DELETE",
        path: "/_sim/roles/{id}",
        what: "delete a role",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/roles/assign",
        what: "give users roles ({\"roleIds\",\"userIds\"} as addrolesforemps)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/roles/unassign",
        what: "take roles from users ({\"roleIds\",\"userIds\"} as removerolesforemps)",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/callback",
        what: "the current callback subscription (kind, url, tags; no secrets)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/callback",
        what: "set the console-configured callback {\"url\",\"token\",\"aes_key\",\"call_back_tag\"?} (owner key = client id); fires check_url first",
    },
    AdminRoute {
        method: "DELETE",
        path: "/_sim/callback",
        what: "remove the subscription (either kind)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/callback/check_url",
        what: "fire check_url at the subscribed URL now; answers {\"acked\", \"error\"?}",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/push-settings",
        what: "read the HTTP push knobs: dialect (legacy/new), msg_signature, timeout_ms, retry_scale, duplicate_rate, delay_ms, reorder_window_ms",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/push-settings",
        what: "change any of those knobs",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/pushes",
        what: "every push attempt (push_id, event_id, event_type, attempt, duplicate, acked, error, plaintext), in_flight, failed_unread",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/pushes/wait[?timeout_ms=N]",
        what: "answers {\"idle\":true} once every event has been pushed to a final outcome",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/stream",
        what: "Stream: settings, registrations, connections, every delivery attempt with its ack (message_id, event_id, connection_id, attempt, outcome, ack_code, ack_status), pings, stray upstream messages",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/stream/settings",
        what: "read the Stream knobs: delivery (http/stream/both), redeliver_after_ms, disconnect_grace_ms, ticket_ttl_ms, ping_interval_ms, disconnect_after_ms (0 = off), duplicate_rate",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/settings",
        what: "change any of those knobs",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/disconnect",
        what: "send SYSTEM disconnect to every connection (or {\"connection\": id}), close its TCP after the grace",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/drop",
        what: "close every connection's TCP (or {\"connection\": id}) at once, no close frame",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/stall",
        what: "leave the connection(s) open but silent both ways (a half-open TCP connection; not even WebSocket pings are answered)",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/ping",
        what: "send a SYSTEM ping now (all, or {\"connection\": id})",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/tickets/expire",
        what: "every unused ticket stops working",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/stream/wait[?timeout_ms=N]",
        what: "answers {\"idle\":true} once every event has been acknowledged over Stream",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/orgs",
        what: "every organization (corp) the simulator serves: org, corp_id, client_id, corp_name, admin prefix (no secrets)",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/orgs/{org}/state",
        what: "each route above except /_sim/orgs, /_sim/unions and /_sim/ip also exists as /_sim/orgs/{org}/... and acts on that org (/_sim/... is org 0)",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/unions",
        what: "the trunk/branch links (上下级组织): trunk, branch, parent_dept_id",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/unions",
        what: "link {\"trunk\",\"branch\",\"parent_dept_id\"?}: the branch's departments and members are copied into the trunk (read-only there, from_union_org / union_emp_ext)",
    },
    AdminRoute {
        method: "DELETE",
        path: "/_sim/unions",
        what: "unlink {\"trunk\",\"branch\"}: the trunk's copies of the branch are removed",
    },
    AdminRoute {
        method: "GET",
        path: "/_sim/ip",
        what: "DingTalk's per-IP limit over every org's calls: settings {per_20s (10000), ip_qps (0 = off), ban_secs (300)}, counts {admitted, denied, bans}, banned",
    },
    AdminRoute {
        method: "POST",
        path: "/_sim/ip",
        what: "change {per_20s?, ip_qps?, ban_secs?}; lift_bans: true ends every ban. Over a window the IP is refused with the gateway's deny JSON {status:1111, source:x5, punish:deny} (HTTP 200) until the ban ends",
    },
];

/// Every `/_sim` route (no token; JSON in and out).
pub fn admin_routes() -> &'static [AdminRoute] {
    ADMIN_ROUTES
}

/// The routes as an aligned text list, for `--help` and the start banner.
pub fn admin_routes_help() -> String {
    let width = ADMIN_ROUTES
        .iter()
        .map(|r| r.method.len() + 1 + r.path.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from("Admin routes (/_sim, no token; JSON in and out):\n");
    for r in ADMIN_ROUTES {
        let route = format!("{} {}", r.method, r.path);
        text.push_str(&format!("  {route:<width$}  {}\n", r.what));
    }
    text
}
