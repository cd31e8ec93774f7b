//! `dingsync sim`: the DingTalk simulator as a standalone server, for trying dingsync (or any
//! DingTalk client) without a DingTalk organization.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = dingtalk_sim::admin_routes_help())]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// People in the generated organization.
    #[arg(long, default_value_t = 2000)]
    pub users: usize,
    /// Departments in the generated organization (default: about one per 15 people).
    #[arg(long)]
    pub depts: Option<usize>,
    /// Seed of the organization generator and of fault injection (same seed, same organization).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Calls per second allowed per app per API; more are answered with errcode 90018.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// Extra delay added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of calls answered with a fault (-1 system busy, HTTP 502, or a slow answer), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Test knob: lifetime of an access token in seconds (DingTalk's is 7200; lower it to see
    /// tokens expire and be refreshed within a test run).
    #[arg(long, default_value_t = 7200)]
    pub token_ttl_secs: u64,
    /// Test knob: how long a "slow answer" fault waits, in milliseconds (default past
    /// DingTalk's 3 s gateway timeout; raise it past a client's own timeout to make it one).
    #[arg(long, default_value_t = 3500)]
    pub slow_answer_ms: u64,
    /// The Client ID (AppKey) the simulator accepts.
    #[arg(long, default_value = "dingsimclientid")]
    pub client_id: String,
    /// The Client Secret (AppSecret) the simulator accepts.
    #[arg(long, default_value = "dingsim-client-secret")]
    pub client_secret: String,
    /// The simulated organization's CorpId.
    #[arg(long, default_value = "dingsimcorp0001")]
    pub corp_id: String,
    /// How many organizations (corps) to serve on the one address, each with its own
    /// credentials, ids, rate limits, pushes and Stream gateway. Org 0 uses the credentials
    /// above; org n appends n to the client id, client secret and corp id. Link them as
    /// trunk/branch with `POST /_sim/unions`.
    #[arg(long, default_value_t = 1)]
    pub orgs: usize,
    /// Calls per second one IP may make over every org and API (0: only DingTalk's own
    /// 10,000 per 20 s). Over either, DingTalk's gateway refuses the IP for 5 minutes with
    /// its deny JSON (`{"status":1111,…,"punish":"deny"}`); see and change it at `/_sim/ip`.
    #[arg(long, default_value_t = 0)]
    pub ip_qps: u32,
}

impl SimArgs {
    pub fn to_config(&self) -> anyhow::Result<dingtalk_sim::SimConfig> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            anyhow::bail!(
                "--fault-rate must be between 0 and 1 (got {})",
                self.fault_rate
            );
        }
        if self.qps == 0 {
            anyhow::bail!("--qps must be at least 1");
        }
        if !(1..=dingtalk_sim::MAX_ORGS).contains(&self.orgs) {
            anyhow::bail!(
                "--orgs must be between 1 and {} (got {})",
                dingtalk_sim::MAX_ORGS,
                self.orgs
            );
        }
        if self.token_ttl_secs == 0 {
            anyhow::bail!("--token-ttl-secs must be at least 1");
        }
        Ok(dingtalk_sim::SimConfig {
            users: self.users,
            depts: self.depts.unwrap_or((self.users / 15).max(1)),
            seed: self.seed,
            qps: self.qps,
            latency_ms: self.latency_ms,
            fault_rate: self.fault_rate,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            corp_id: self.corp_id.clone(),
            token_ttl: std::time::Duration::from_secs(self.token_ttl_secs),
            slow_answer: std::time::Duration::from_millis(self.slow_answer_ms),
            orgs: self.orgs,
            ip_qps: self.ip_qps,
            ..Default::default()
        })
    }
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = dingtalk_sim::start(config, listener)
        .await
        .context("cannot start the simulator")?;
    let base = handle.base_url();
    // The simulator's credentials are test values the user chose on the command line, so
    // printing them is the point (they are not a real organization's secrets).
    println!("DingTalk simulator listening on {base}");
    println!(
        "  organization: {} people in {} departments (seed {})",
        args.users,
        args.depts.unwrap_or((args.users / 15).max(1)),
        args.seed
    );
    for index in 0..handle.orgs() {
        let Some(org) = handle.org(index) else {
            continue;
        };
        let org_config = org.config();
        if handle.orgs() > 1 {
            println!(
                "  org {index} ({}), admin {}:",
                org_config.corp_name,
                org.admin_url()
            );
        }
        println!("  client id:     {}", org_config.client_id);
        println!("  client secret: {}", org_config.client_secret);
        println!("  corp id:       {}", org_config.corp_id);
    }
    println!(
        "  rate limit:    {} calls/s per API; latency {} ms; fault rate {}",
        args.qps, args.latency_ms, args.fault_rate
    );
    if args.ip_qps > 0 {
        println!(
            "  per-IP limit:  {} calls/s over every org and API (and DingTalk's 10,000 per 20 s); \
             over it the IP is refused for 5 minutes (see /_sim/ip)",
            args.ip_qps
        );
    }
    println!("try:");
    println!(
        "  TOKEN=$(curl -s '{base}/gettoken?appkey={}&appsecret={}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
        args.client_id, args.client_secret
    );
    println!(
        "  curl -s -X POST \"{base}/topapi/v2/department/listsub?access_token=$TOKEN\" -H 'Content-Type: application/json' -d '{{\"dept_id\":1}}'"
    );
    print!("{}", dingtalk_sim::admin_routes_help());
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.shutdown().await;
    Ok(())
}
