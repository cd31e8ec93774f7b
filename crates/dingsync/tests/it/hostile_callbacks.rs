//! Hostile pushes at the real binary's edge (issue 9 §4): whatever an attacker or a broken
//! proxy sends to `POST /callbacks/dingtalk` is refused with a 4xx and writes nothing, and no
//! configured secret ever appears in what the service prints.
//!
//! The service runs as a process with `-v` (debug logs), so the secret grep covers everything
//! it could print: start-up, the refusals, a DingTalk token fetch (`/readyz`), OA API calls
//! with a right and a wrong bearer token, and one accepted push. The accepted push comes last
//! and proves the inbox check is not vacuous: the same harness does write when the push is good.

use crate::support;

use directory_store::Store;
use reqwest::StatusCode;
use serde_json::json;
use support::{AES_KEY, API_TOKEN, CALLBACK_TOKEN, Pusher, Service, ServiceConfig, SignedPush};

/// A contacts event in the new dialect, as the simulator and DingTalk send it.
fn event(n: u32) -> String {
    json!({
        "EventType": "user_modify_org",
        "EventTime": support::now_ms(),
        "CorpId": "dingcorp",
        "eventId": format!("hostile{n:026}"),
        "timeStamp": support::now_ms().to_string(),
        "userId": [format!("user{n}")],
    })
    .to_string()
}

/// One hostile request: a name for the failure message, the push, and the status it must get.
struct Case {
    name: &'static str,
    push: SignedPush,
    status: StatusCode,
}

#[tokio::test]
async fn hostile_pushes_are_refused_write_nothing_and_no_secret_is_printed() {
    let sim = support::start_sim(20, 3, 9).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServiceConfig::for_sim(&sim, dir.path());
    let mut service = Service::start(&config, &["-v"]).await;
    // A fresh connection per request: a refusal may close the connection, and a reused one
    // would turn that into a spurious client error on the next case.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client");
    let url = config.callback_url();
    let owner = config.client_id.clone();
    let mut good = Pusher::new(&owner, 1);
    let now = support::now_ms().to_string();

    let mut cases = Vec::new();
    // Forged: the body is genuine, the signature was made without our token.
    let mut forger = Pusher::with_keys("someoneelsetoken", AES_KEY, &owner, 2);
    let encrypt = good.encrypt(&event(1));
    let mut forged = forger.signed(&encrypt, &now);
    cases.push(Case {
        name: "forged signature",
        push: forged.clone(),
        status: StatusCode::FORBIDDEN,
    });
    // The same forgery with the other spelling of the parameter.
    forged.query[0].0 = "msg_signature".into();
    cases.push(Case {
        name: "forged msg_signature",
        push: forged,
        status: StatusCode::FORBIDDEN,
    });
    // Replays of a genuine, correctly signed push captured two hours ago, in ms and in s.
    let stale_ms = (support::now_ms() - 2 * 3600 * 1000).to_string();
    cases.push(Case {
        name: "stale timestamp (ms)",
        push: good.push(&event(2), &stale_ms),
        status: StatusCode::FORBIDDEN,
    });
    let stale_s = (support::now_ms() / 1000 - 2 * 3600).to_string();
    cases.push(Case {
        name: "stale timestamp (s)",
        push: good.push(&event(3), &stale_s),
        status: StatusCode::FORBIDDEN,
    });
    // Truncated on the wire: the JSON body is cut short.
    let mut cut = good.push(&event(4), &now);
    cut.body.truncate(cut.body.len() / 2);
    cases.push(Case {
        name: "truncated body",
        push: cut,
        status: StatusCode::BAD_REQUEST,
    });
    // Truncated ciphertext, re-signed so only decryption can notice.
    let whole = good.encrypt(&event(5));
    let short = &whole[..whole.len() - 24];
    cases.push(Case {
        name: "truncated ciphertext",
        push: good.signed(short, &now),
        status: StatusCode::FORBIDDEN,
    });
    // Oversized: beyond the 64 KiB limit, correctly signed. Kept small enough to fit in the
    // loopback socket buffers, so the client has sent it all before the service refuses it and
    // reads the 413 instead of a reset connection.
    let huge = "A".repeat(80 * 1024);
    cases.push(Case {
        name: "oversized body",
        push: good.signed(&huge, &now),
        status: StatusCode::PAYLOAD_TOO_LARGE,
    });
    // Another app's push: right token and key, wrong owner key.
    let mut other_app = Pusher::new("dingotherapp", 3);
    cases.push(Case {
        name: "wrong owner key",
        push: other_app.push(&event(6), &now),
        status: StatusCode::FORBIDDEN,
    });
    // Right token, encrypted with another AES key.
    let mut wrong_key = Pusher::with_keys(
        CALLBACK_TOKEN,
        "AnotherKey0123456789abcdefghijklmnopqrstuvw",
        &owner,
        4,
    );
    cases.push(Case {
        name: "wrong AES key",
        push: wrong_key.push(&event(7), &now),
        status: StatusCode::FORBIDDEN,
    });
    cases.push(Case {
        name: "garbage base64",
        push: good.signed("!!not*base64%%", &now),
        status: StatusCode::FORBIDDEN,
    });
    let mut not_json = good.push(&event(8), &now);
    not_json.body = "{encrypt: nope".into();
    cases.push(Case {
        name: "malformed JSON body",
        push: not_json,
        status: StatusCode::BAD_REQUEST,
    });
    let mut wrong_shape = good.push(&event(9), &now);
    wrong_shape.body = json!({"encrypt": 42}).to_string();
    cases.push(Case {
        name: "encrypt is not a string",
        push: wrong_shape,
        status: StatusCode::BAD_REQUEST,
    });
    // Genuine crypto around a plaintext that is not an event.
    cases.push(Case {
        name: "malformed JSON plaintext",
        push: good.push("{\"EventType\": \"user_add_org\", \"UserId\": [", &now),
        status: StatusCode::BAD_REQUEST,
    });
    let mut unsigned = good.push(&event(10), &now);
    unsigned.query.retain(|(name, _)| name != "signature");
    cases.push(Case {
        name: "no signature",
        push: unsigned,
        status: StatusCode::BAD_REQUEST,
    });

    for case in &cases {
        let (status, body) = support::send_push(&http, &url, &case.push).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert!(
            !good.is_success_reply(&body),
            "{}: acknowledged a hostile push",
            case.name
        );
    }

    let store = Store::connect(&config.database_url())
        .await
        .expect("open the service's database");
    let inbox = support::whole_inbox(&store).await;
    assert!(inbox.is_empty(), "hostile pushes were stored: {inbox:?}");

    // The metric counts every refusal.
    let metrics = http
        .get(format!("{}/metrics", config.base()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let rejected: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("dingsync_callbacks_rejected_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(rejected as usize, cases.len(), "{metrics}");

    // Exercise the other places a secret could leak: a token fetch with the client secret,
    // the OA API with the right and a wrong bearer token.
    let ready = http
        .get(format!("{}/readyz", config.base()))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let api = format!("{}/api/v1/departments", config.base());
    let ok = http
        .get(&api)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("api");
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = http
        .get(&api)
        .bearer_auth(format!("{API_TOKEN}x"))
        .send()
        .await
        .expect("api");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // The control: a genuine push is acknowledged and stored, so "nothing written" above
    // was not an inbox the test cannot see.
    let genuine = good.push(&event(11), &support::now_ms().to_string());
    let (status, body) = support::send_push(&http, &url, &genuine).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(good.is_success_reply(&body), "{body}");
    let inbox = support::whole_inbox(&store).await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].payload_json.contains("hostile"), "{inbox:?}");

    store.close().await;
    service.kill().await;
    let output = service.output();
    let refusals = output.matches("callback rejected").count();
    assert!(
        refusals >= cases.len(),
        "expected a log line per refusal ({} cases), found {refusals}:\n{output}",
        cases.len()
    );
    for secret in config.secrets() {
        assert!(
            !output.contains(&secret),
            "a configured secret appears in the service's output:\n{output}"
        );
    }
    sim.shutdown().await;
}
