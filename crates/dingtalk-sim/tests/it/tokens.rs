//! Access tokens and how DingTalk answers bad ones, over real HTTP.

use crate::common;

use common::Sim;
use dingtalk_sim::SimConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn gettoken_reuses_the_token_and_rejects_bad_or_missing_credentials() {
    let sim = Sim::with_org(0, 0).await;
    let again = sim.fetch_token().await;
    assert_eq!(again, sim.token, "a valid token is returned again");

    let get = |query: Vec<(&'static str, &'static str)>| {
        let http = sim.http.clone();
        let url = format!("{}/gettoken", sim.base);
        async move {
            http.get(url)
                .query(&query)
                .send()
                .await
                .expect("answer")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let bad = get(vec![("appkey", "dingsimclientid"), ("appsecret", "wrong")]).await;
    assert_eq!(bad["errcode"], 40096);
    assert_eq!(bad["errmsg"], "不合法的appKey或appSecret");
    let missing = get(vec![]).await;
    assert_eq!(missing["errcode"], 40035);
    let corp = get(vec![("corpid", "nope"), ("corpsecret", "x")]).await;
    assert_eq!(corp["errcode"], 40089);
    let ok = get(vec![
        ("appkey", "dingsimclientid"),
        ("appsecret", "dingsimclientsecret"),
    ])
    .await;
    assert_eq!(ok["expires_in"], 7200);

    // Credentials sent as a form body on the GET are not read: 40035, as observed.
    let form: Value = sim
        .http
        .get(format!("{}/gettoken", sim.base))
        .form(&[
            ("appkey", "dingsimclientid"),
            ("appsecret", "dingsimclientsecret"),
        ])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(form["errcode"], 40035);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn new_token_endpoint_takes_json_only_and_shares_the_token() {
    let sim = Sim::with_org(0, 0).await;
    let url = format!("{}/v1.0/oauth2/accessToken", sim.base);
    let ok = sim
        .http
        .post(&url)
        .json(&json!({"appKey": "dingsimclientid", "appSecret": "dingsimclientsecret"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["accessToken"], sim.token.as_str());
    assert_eq!(body["expireIn"], 7200);

    let bad = sim
        .http
        .post(&url)
        .json(&json!({"appKey": "dingsimclientid", "appSecret": "nope"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["code"], "invalidClientIdOrSecret");
    assert!(body["requestid"].is_string());

    let form = sim
        .http
        .post(&url)
        .form(&[
            ("appKey", "dingsimclientid"),
            ("appSecret", "dingsimclientsecret"),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(form.status(), 400);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn bad_missing_and_expired_tokens_answer_like_dingtalk() {
    let sim = Sim::with_org(3, 1).await;
    let url = format!("{}/topapi/v2/department/listsub", sim.base);

    let garbage: Value = sim
        .http
        .post(&url)
        .query(&[("access_token", "garbage")])
        .json(&json!({}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(garbage["errcode"], 88);
    assert_eq!(garbage["sub_code"], "40014");
    assert!(garbage["request_id"].is_string());

    let blank: Value = sim
        .http
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(blank["errcode"], 88);
    assert_eq!(blank["sub_code"], "40000");

    // Legacy oapi paths answer a plain 40014.
    let legacy: Value = sim
        .http
        .post(format!("{}/role/add_role_group", sim.base))
        .query(&[("access_token", "garbage")])
        .json(&json!({"name": "G"}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        legacy,
        json!({"errcode": 40014, "errmsg": "不合法的access_token"})
    );

    // The token works in a form body too, then stops working when expired.
    let form = sim
        .call_form("/topapi/v2/department/listsub", &[("dept_id", "1")])
        .await;
    assert_eq!(form["errcode"], 0, "{form}");
    let (status, _) = sim
        .admin(reqwest::Method::POST, "/tokens/expire", None)
        .await;
    assert_eq!(status, 200);
    let expired = sim.call("/topapi/v2/department/listsub", json!({})).await;
    assert_eq!(expired["errcode"], 88);
    assert_eq!(expired["sub_code"], "40014");
    let fresh = sim.fetch_token().await;
    assert_ne!(fresh, sim.token, "a new token after expiry");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn token_lifetime_follows_the_runtime_setting() {
    let mut sim = Sim::with_org(0, 0).await;
    sim.settings(json!({"token_ttl_secs": 1})).await;
    let http = sim.http.clone();
    let body: Value = http
        .get(format!("{}/gettoken", sim.base))
        .query(&[
            ("appkey", "dingsimclientid"),
            ("appsecret", "dingsimclientsecret"),
        ])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(body["expires_in"], 1);
    sim.token = body["access_token"].as_str().expect("token").to_owned();
    // Poll (bounded) until the one-second lifetime has passed.
    let mut expired = false;
    for _ in 0..100 {
        if sim.code("/topapi/v2/department/listsub", json!({})).await == 88 {
            expired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(expired, "the token never expired");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let sim = Sim::start(SimConfig::default()).await;
    let unknown = sim.call("/topapi/v2/user/notexist", json!({})).await;
    assert_eq!(unknown["errcode"], 22);
    assert_eq!(
        unknown["sub_msg"],
        "不合法ApiName，ApiName = dingtalk.oapi.v2.user.notexist"
    );
    let other = sim.call("/microapp/nothing", json!({})).await;
    assert_eq!(
        other,
        json!({"errcode": 404, "errmsg": "请求的URI地址不存在"})
    );
    let get: Value = sim
        .http
        .get(format!("{}/topapi/v2/department/listsub", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(get["errcode"], 43002);
    sim.handle.shutdown().await;
}
