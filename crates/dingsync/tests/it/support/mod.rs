//! Support for the tests that drive the real `dingsync` binary as a separate process: start it
//! with a config file on a port of our choosing, SIGKILL it, restart it on the same port, and
//! keep everything it ever printed; plus the simulator's `/_sim` routes and signed pushes built
//! the way DingTalk builds them.
//!
//! Why a process and not the in-process `Application`: a SIGKILL is the only honest crash. It
//! stops the service between any two instructions, drops every connection and never runs a
//! destructor, so what survives is exactly what reached the SQLite file. An in-process
//! "crash" (aborting a task) would still let the runtime finish writes and close the pool.

#![allow(dead_code)] // each test module uses a different part

pub mod crash;
pub mod lb;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callback_crypto::CallbackCrypto;
use directory_store::{InboxEvent, Store};
use rand::Rng as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The line `dingsync serve` prints once it is bound.
const LISTENING: &str = "dingsync listening on http://";

/// How long a start may take before the test gives up (a debug binary on a busy 2-core host).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Callback secrets used by every test; letters and digits as DingTalk requires.
pub const CALLBACK_TOKEN: &str = "crashtesttoken42";
pub const AES_KEY: &str = "Zq3xV9kLm2Pw8Rt5Yb1Nc7Hd4Jf6Gs0Ae2Ui9Oo3Kl7";
/// A bearer token for the OA API, so its handling is covered by the secret grep too.
pub const API_TOKEN: &str = "oa-api-token-Hq8Wz3Lp9Xc2Vb7N";

/// A free loopback port, found by binding port 0 and letting go of it. The service binds it
/// itself, and binds it again after each restart (a restart must come back on the same URL,
/// because that URL is what DingTalk pushes to).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// What goes into the service's config file.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The simulator's base URL, client id and secret, corp id.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub corp_id: String,
    /// The SQLite file.
    pub db_path: PathBuf,
    /// The fixed port every incarnation listens on.
    pub port: u16,
    /// `[events] catchup_interval_secs`, when the test wants catch-up to run on a schedule.
    pub catchup_interval_secs: Option<u64>,
    /// `[events] mode`, when the test wants Stream mode instead of HTTP push.
    pub events_mode: Option<&'static str>,
    /// Keys merged over the generated document, section by section (`Null`: none), e.g. a
    /// PostgreSQL `database.url` shared by several instances.
    pub overrides: Value,
}

impl ServiceConfig {
    /// A config for the simulator `sim`, a database in `dir` and a free port.
    pub fn for_sim(sim: &dingtalk_sim::SimHandle, dir: &Path) -> Self {
        let c = sim.config();
        Self {
            base_url: sim.base_url(),
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone(),
            corp_id: c.corp_id.clone(),
            db_path: dir.join("dingsync.db"),
            port: free_port(),
            catchup_interval_secs: None,
            events_mode: None,
            overrides: Value::Null,
        }
    }

    /// `sqlite://…?mode=rwc` for the database file.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.db_path.display())
    }

    /// Where the service listens, as a base URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The push URL to subscribe.
    pub fn callback_url(&self) -> String {
        format!("{}/callbacks/dingtalk", self.base())
    }

    /// The TOML an operator would write, with the documented keys.
    pub fn to_toml(&self) -> String {
        let mut doc = json!({
            "dingtalk": {
                "base_url": self.base_url,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "corp_id": self.corp_id,
            },
            "callback": {
                "token": CALLBACK_TOKEN,
                "aes_key": AES_KEY,
            },
            "database": { "url": self.database_url() },
            "server": { "listen": format!("127.0.0.1:{}", self.port) },
            "api": { "tokens": [API_TOKEN] },
        });
        if let Some(secs) = self.catchup_interval_secs {
            doc["events"] = json!({ "catchup_interval_secs": secs });
        }
        if let Some(mode) = self.events_mode {
            doc["events"]["mode"] = json!(mode);
        }
        if let Some(sections) = self.overrides.as_object() {
            for (section, keys) in sections {
                // An array (`orgs`) is a list of tables: it replaces the key whole.
                if keys.is_array() {
                    doc[section.as_str()] = keys.clone();
                    continue;
                }
                for (key, value) in keys.as_object().into_iter().flatten() {
                    doc[section.as_str()][key.as_str()] = value.clone();
                }
            }
        }
        toml::to_string(&doc).expect("config as TOML")
    }

    /// The secrets this config holds, for the log grep.
    pub fn secrets(&self) -> Vec<String> {
        vec![
            self.client_secret.clone(),
            CALLBACK_TOKEN.to_owned(),
            AES_KEY.to_owned(),
            API_TOKEN.to_owned(),
        ]
    }
}

/// The real `dingsync serve`, as a child process that can be killed and restarted.
pub struct Service {
    /// The executable every incarnation runs.
    binary: PathBuf,
    /// The config every incarnation reads.
    config_path: PathBuf,
    /// The port every incarnation must come back on.
    port: u16,
    /// Extra command-line arguments (such as `-v`).
    args: Vec<String>,
    /// The running incarnation, if any.
    child: Option<Child>,
    /// Everything every incarnation wrote to stdout and stderr, in arrival order per stream,
    /// for the secret grep and for failure messages.
    output: Arc<Mutex<String>>,
    /// The tasks copying the current incarnation's output; awaited after a kill so the
    /// captured text is complete.
    readers: Vec<JoinHandle<()>>,
    /// How many incarnations have started listening (the first start counts).
    pub starts: usize,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config_path", &self.config_path)
            .field("starts", &self.starts)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Writes `config` next to the database and starts the service on it.
    pub async fn start(config: &ServiceConfig, args: &[&str]) -> Service {
        Self::start_binary(None, config, args).await
    }

    /// As [`Service::start`], with another build of the binary (a release build, for a
    /// measurement); `None` is the one Cargo built for this test.
    pub async fn start_binary(
        binary: Option<&Path>,
        config: &ServiceConfig,
        args: &[&str],
    ) -> Service {
        let config_path = config.db_path.with_file_name("dingsync.toml");
        std::fs::write(&config_path, config.to_toml()).expect("write config");
        let mut service = Service {
            binary: binary.map_or_else(
                || PathBuf::from(env!("CARGO_BIN_EXE_dingsync")),
                Path::to_path_buf,
            ),
            config_path,
            port: config.port,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
            output: Arc::new(Mutex::new(String::new())),
            readers: Vec::new(),
            starts: 0,
        };
        service.restart().await;
        service
    }

    /// Starts a new incarnation and waits until it prints its listening line. Binding the same
    /// port can fail in the moment after a kill if something else grabbed it; that is retried a
    /// few times, every other failure ends the test with the service's output.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the service is still running");
        let mut last_error = String::new();
        for _ in 0..5 {
            let before = self.output().len();
            match self.spawn_once().await {
                Ok(()) => return,
                Err(error) => last_error = error,
            }
            // Only a lost race for the port is worth another try.
            if !self.output()[before..].contains("cannot listen") {
                break;
            }
        }
        panic!(
            "dingsync serve did not start: {last_error}\n--- output ---\n{}",
            self.output()
        );
    }

    async fn spawn_once(&mut self) -> Result<(), String> {
        // The config file is the whole configuration: settings inherited from the test's
        // environment would make the run depend on who started it.
        let mut command = testkit::process::clean_command(&self.binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.append(&format!("=== start {} ===\n", self.starts + 1));
        let mut child = command.spawn().map_err(|e| format!("spawn: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (listening_tx, listening_rx) = oneshot::channel::<String>();
        let output = Arc::clone(&self.output);
        self.readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut listening = Some(listening_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix(LISTENING)
                    && let Some(tx) = listening.take()
                {
                    let _ = tx.send(addr.to_owned());
                }
                push_line(&output, &line);
            }
        }));
        let output = Arc::clone(&self.output);
        self.readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                push_line(&output, &line);
            }
        }));
        let started = tokio::time::timeout(START_TIMEOUT, async {
            tokio::select! {
                addr = listening_rx => addr.map_err(|_| "exited before listening".to_owned()),
                status = child.wait() => Err(format!("exited before listening: {status:?}")),
            }
        })
        .await
        .unwrap_or_else(|_| Err("no listening line in time".to_owned()));
        match started {
            Ok(addr) => {
                // Anything else would make the restart pointless: DingTalk pushes to one URL.
                let expected = format!("127.0.0.1:{}", self.port);
                assert_eq!(addr, expected, "the service listens elsewhere");
                self.child = Some(child);
                self.starts += 1;
                Ok(())
            }
            Err(error) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                self.join_readers().await;
                Err(error)
            }
        }
    }

    /// SIGKILLs the running incarnation (`Child::start_kill` sends SIGKILL on Unix) and reaps
    /// it, so the port is free and its output fully captured when this returns.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("the service is running");
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reap the killed service");
        self.join_readers().await;
        self.append("=== killed ===\n");
    }

    /// Whether an incarnation is running (it has not exited on its own).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    async fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            // The pipes close when the process dies; the bound only guards against a
            // grandchild holding them open.
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
    }

    fn append(&self, text: &str) {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_str(text);
    }

    /// Everything captured so far.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn push_line(output: &Mutex<String>, line: &str) {
    let mut text = output
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    text.push_str(line);
    text.push('\n');
}

/// A simulator with a few hundred users, on port 0.
pub async fn start_sim(users: usize, depts: usize, seed: u64) -> dingtalk_sim::SimHandle {
    testkit::sim::start_org(users, depts, seed).await
}

pub use testkit::http::client as http;

/// Sends a JSON request to the simulator's `/_sim` and returns the answer, failing the test on
/// anything but 2xx.
pub async fn sim_call(
    http: &reqwest::Client,
    sim: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    testkit::sim::call(http, sim, method, path, body.as_ref()).await
}

/// Subscribes `url` as the console-configured callback (the simulator fires `check_url`
/// first and refuses unless the service answers it).
pub async fn subscribe(http: &reqwest::Client, sim: &str, url: &str) {
    sim_call(
        http,
        sim,
        reqwest::Method::POST,
        "/_sim/callback",
        Some(json!({"url": url, "token": CALLBACK_TOKEN, "aes_key": AES_KEY})),
    )
    .await;
}

/// Reads the whole inbox, every state, in id order.
pub async fn whole_inbox(store: &Store) -> Vec<InboxEvent> {
    let mut all = Vec::new();
    loop {
        let page = store
            .inbox_list(None, all.last().map(|e: &InboxEvent| e.id), 500)
            .await
            .expect("read the inbox");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Signs and encrypts pushes the way DingTalk does, for one owner key.
pub struct Pusher {
    crypto: CallbackCrypto,
    rng: StdRng,
}

/// One signed push: the query string pairs and the JSON body.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: Vec<(String, String)>,
    pub body: String,
}

impl Pusher {
    /// A pusher with the test's token and AES key and the given owner key.
    pub fn new(owner_key: &str, seed: u64) -> Self {
        Self::with_keys(CALLBACK_TOKEN, AES_KEY, owner_key, seed)
    }

    /// A pusher with other keys (to forge pushes).
    pub fn with_keys(token: &str, aes_key: &str, owner_key: &str, seed: u64) -> Self {
        Self {
            crypto: CallbackCrypto::new(token, aes_key, owner_key).expect("valid test keys"),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A 16-character nonce.
    pub fn nonce(&mut self) -> String {
        (0..16)
            .map(|_| char::from(self.rng.sample(rand::distributions::Alphanumeric)))
            .collect()
    }

    /// The ciphertext of `message`.
    pub fn encrypt(&mut self, message: &str) -> String {
        self.crypto
            .encrypt(message, &mut self.rng)
            .expect("encrypt")
    }

    /// The signature over `timestamp`, `nonce` and `encrypt`.
    pub fn sign(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        self.crypto.signature(timestamp, nonce, encrypt)
    }

    /// A correctly signed push of `encrypt` at `timestamp`.
    pub fn signed(&mut self, encrypt: &str, timestamp: &str) -> SignedPush {
        let nonce = self.nonce();
        let signature = self.sign(timestamp, &nonce, encrypt);
        SignedPush {
            query: vec![
                ("signature".into(), signature),
                ("timestamp".into(), timestamp.to_owned()),
                ("nonce".into(), nonce),
            ],
            body: json!({ "encrypt": encrypt }).to_string(),
        }
    }

    /// A correctly signed and encrypted push of `message` at `timestamp`.
    pub fn push(&mut self, message: &str, timestamp: &str) -> SignedPush {
        let encrypt = self.encrypt(message);
        self.signed(&encrypt, timestamp)
    }

    /// Whether a reply is DingTalk's acknowledgement: signed with our token and decrypting to
    /// `success`.
    pub fn is_success_reply(&self, reply: &Value) -> bool {
        let field = |name: &str| reply.get(name).and_then(Value::as_str).unwrap_or("");
        self.crypto
            .verify_signature(
                field("msg_signature"),
                field("timeStamp"),
                field("nonce"),
                field("encrypt"),
            )
            .is_ok()
            && self.crypto.decrypt(field("encrypt")).ok().as_deref() == Some("success")
    }
}

/// POSTs a push to the service's callback route; returns the status and the body as JSON
/// (`Null` when it is not JSON).
pub async fn send_push(
    http: &reqwest::Client,
    url: &str,
    push: &SignedPush,
) -> (reqwest::StatusCode, Value) {
    let response = http
        .post(url)
        .query(&push.query)
        .header("content-type", "application/json")
        .body(push.body.clone())
        .send()
        .await
        .expect("POST the push");
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Unix milliseconds now (tests only stamp pushes with it, as DingTalk would).
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

pub use testkit::wait::poll_until;

pub mod faults;
