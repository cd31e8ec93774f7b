//! `dingsync bench ... --mapping FILE`: the bench's service runs with the file's `[mapping]` and
//! `[scope]` (the ten-rule example the lead measures at 100,000 people), and the report says
//! which mapping ran. What the mapping did is checked against the simulator's own state
//! (`/_sim/state`), not against the engine's translation; no timing is asserted.

use std::path::PathBuf;

use dingsync::bench::{self, DbChoice, Scenario, import::ImportArgs, rig::Rig, rig::RigOptions};
use dingsync::local::Local;
use serde_json::Value;

/// The ten-rule example shipped in the docs.
fn ten_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/mapping-ten-rules.toml")
}

/// The HR code of a DingTalk title, as the example's code table says (`None`: not in it).
fn code_of(title: &str) -> Option<&'static str> {
    let table = [
        ("工程师", "T01"),
        ("高级工程师", "T02"),
        ("产品经理", "T03"),
        ("设计师", "T04"),
        ("销售代表", "T05"),
        ("会计", "T06"),
        ("人事专员", "T07"),
        ("行政助理", "T08"),
        ("项目经理", "T09"),
        ("数据分析师", "T10"),
    ];
    table.iter().find(|(t, _)| *t == title).map(|(_, c)| *c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_rig_runs_the_service_with_the_mapping_file() {
    let options = RigOptions {
        users: 60,
        depts: 6,
        qps: 50,
        mapping: Some(ten_rules()),
        ..RigOptions::bench(&bench::rig::DbChoice::Sqlite)
    };
    let rig = Rig::start(&Local, &options).await.expect("rig starts");
    let report = rig.mapping_report();
    assert!(
        report["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("mapping-ten-rules.toml")),
        "{report}"
    );
    let fingerprint = report["fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !fingerprint.is_empty() && fingerprint != "identity",
        "{report}"
    );
    let imported = rig.import().await.expect("import runs");
    assert!(imported.complete, "{:?}", imported.failures);

    let state = rig
        .sim_send(reqwest::Method::GET, "/_sim/state", None)
        .await
        .expect("sim state");
    let (status, list) = rig
        .oa_send(reqwest::Method::GET, "/users?limit=1000", None)
        .await
        .expect("OA users");
    assert!(status.is_success(), "{status}: {list}");
    let oa: Vec<&Value> = list["items"].as_array().expect("items").iter().collect();
    let sim_users = state["users"].as_array().expect("sim users");
    assert_eq!(oa.len(), sim_users.len(), "everyone has a job number");
    let (mut titled, mut desks) = (0, 0);
    for s in sim_users {
        let id = s["userid"].as_str().expect("userid");
        let o = oa
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("{id} imported"));
        // (1) The prefix.
        let job = s["job_number"].as_str().expect("job number");
        assert_eq!(o["job_number"], format!("HR-{job}"), "{id}");
        // (2) The code table: DingTalk's title arrives as its HR code.
        if let Some(code) = s["title"].as_str().and_then(code_of) {
            let titles: Vec<&str> = o["departments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["title"].as_str())
                .collect();
            assert!(titles.contains(&code), "{id}: {titles:?} lacks {code}");
            assert!(
                titles.iter().all(|t| code_of(t).is_none()),
                "{id}: {titles:?}"
            );
            titled += 1;
        }
        // (3, 4) DingTalk's 工位 is OA's desk.
        let ext: Value = s["extension"]
            .as_str()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or(Value::Null);
        if let Some(desk) = ext.get("工位").and_then(Value::as_str) {
            assert_eq!(o["extension"]["desk"], desk, "{id}");
            assert!(o["extension"].get("工位").is_none(), "{id}");
            desks += 1;
        }
    }
    // The generated org exercises the rules (so the loop above checked something).
    assert!(titled > 10, "{titled} people with a known title");
    assert!(desks > 0, "nobody has a desk in DingTalk's extension");
    rig.shutdown().await.expect("rig stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_import_with_a_mapping_names_it_in_the_report() {
    let args = |mapping| {
        Scenario::Import(ImportArgs {
            users: 40,
            depts: Some(4),
            qps: 50,
            latency_ms: 0,
            no_sequential: true,
            mapping,
        })
    };
    let with = bench::run_scenario(&args(Some(ten_rules())), &DbChoice::Sqlite)
        .await
        .expect("import bench with the mapping runs");
    let v = serde_json::to_value(&with).expect("serializes");
    assert_eq!(v["people_imported"], 40, "{v}");
    assert!(
        v["mapping"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("mapping-ten-rules.toml")),
        "{v}"
    );
    assert!(
        v["mapping"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() > 8),
        "{v}"
    );
    let without = bench::run_scenario(&args(None), &DbChoice::Sqlite)
        .await
        .expect("import bench without a mapping runs");
    let v = serde_json::to_value(&without).expect("serializes");
    assert_eq!(v["mapping"], "identity", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_mapping_file_is_refused_with_its_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[mapping.users.fields.job_number]\nto_dingtalk = '\"E\" + '\n",
    )
    .expect("write");
    let scenario = Scenario::Import(ImportArgs {
        users: 5,
        depts: Some(1),
        qps: 50,
        latency_ms: 0,
        no_sequential: true,
        mapping: Some(path),
    });
    let err = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect_err("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("broken.toml")
            && text.contains("mapping.users.fields.job_number.to_dingtalk"),
        "{text}"
    );
}
