//! Command-line definitions (clap derive). Behaviour lives in `commands`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "flashcrowd",
    version,
    about = "Load tests and capacity drills shaped like a Double-11 flash crowd",
    long_about = "flashcrowd reads a YAML scenario (browsing before the sale, a countdown to 00:00, \
a flash crowd that peaks within seconds, a long decay; mobile and PC clients with different habits), \
drives virtual users against a target over HTTP and writes latency and throughput reports.\n\n\
Exit codes: 0 passed; 1 a threshold failed; 2 bad input; 3 the run was aborted or interrupted.",
    after_help = "Start with `flashcrowd demo`, then copy a scenario from scenarios/."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a runnable scenario from an access log, JSON lines or a HAR file: clients and shares
    /// from User-Agents, journeys from sessions, think times from gaps, the observed rate as stages.
    Import(ImportArgs),
    /// Start the embedded shop, run the countdown demo against it (about a minute) with the live
    /// page on a loopback port (the URL is printed), and write a report. `--drill`: the sale-night
    /// drill instead (a failover and a degrade switch under load, and the shop's recovery).
    Demo(DemoArgs),
    /// Run a scenario against its target and write a report.
    Run(Box<RunArgs>),
    /// Parse and check scenarios; sends no traffic.
    Validate(ValidateArgs),
    /// Print a scenario's load plan: phases, rates, expected sessions and requests, a chart.
    Plan(PlanArgs),
    /// Serve the embedded demo shop (a target to practise on).
    Shop(ShopArgs),
    /// Re-render a run directory's reports (html, markdown, junit, charts) from report.json + latency.hlog.
    Report(ReportArgs),
    /// Compare two run directories: per request and phase, with noise-aware verdicts.
    Compare(CompareArgs),
    /// Instances a target peak needs, from a run's measured capacity.
    Capacity(CapacityArgs),
    /// Merge the run directories of `--segment i/n` runs into one run directory: exact histograms,
    /// thresholds judged on the whole.
    Merge(MergeArgs),
    /// One live page and terminal summary over many generators' endpoints (each `--segment`
    /// process's --metrics-listen), their per-second histograms merged exactly.
    Watch(WatchArgs),
    /// Write a commented, runnable scenario to start from (`flashcrowd new my-sale --template countdown`).
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The scenario's name; the file is NAME.yaml unless --out says otherwise.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// What to start from: smoke (a short steady load with thresholds, for CI), countdown (the
    /// Double-11 shape with mobile and PC users), drill (a step drill that finds capacity),
    /// calendar (a sale night's moments in one run), replay (an access log as the load; a sample
    /// log is written beside the scenario).
    #[arg(long, short, value_enum, default_value_t = Template::Smoke)]
    pub template: Template,
    /// Where to write it (default: NAME.yaml in the current directory).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// The scenarios `flashcrowd new` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    Smoke,
    Countdown,
    Drill,
    Calendar,
    Replay,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::Smoke => "smoke",
            Template::Countdown => "countdown",
            Template::Drill => "drill",
            Template::Calendar => "calendar",
            Template::Replay => "replay",
        }
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run directory.
    #[arg(value_name = "BASE_DIR")]
    pub base: PathBuf,
    /// The run directory to judge against it.
    #[arg(value_name = "NEW_DIR")]
    pub new: PathBuf,
    /// Exit 1 when this change holds with its whole 95% interval beyond the limit (repeatable).
    /// The threshold grammar with a change for the value: `p99 > +10%`, `errors > +0.1pp`,
    /// `create-order p99 > +10% during peak`. Phases too short to judge never fail.
    #[arg(long = "fail-on", value_name = "EXPR")]
    pub fail_on: Vec<String>,
    /// Print every row (request × phase × metric), not only what changed.
    #[arg(long, short)]
    pub verbose: bool,
    /// Where compare.md, compare.html and compare.json go (default: NEW_DIR/compare/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not list the files written.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The run directory (a step drill, ideally).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// The peak to plan for: `583000/s`.
    #[arg(long = "target-peak", value_name = "RATE")]
    pub target_peak: String,
    /// Instances the run drove (its capacity is divided among them).
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// Spare capacity on top of the peak.
    #[arg(long, default_value = "30%")]
    pub headroom: String,
    /// Project next year's peak as target × growth (e.g. 1.07).
    #[arg(long)]
    pub growth: Option<f64>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The segments' run directories (each holds state.json, report.json and latency.hlog).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged run directory goes.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Judge a merge that lacks segments on its thresholds alone (exit 0/1) instead of status
    /// `incomplete` (exit 3).
    #[arg(long)]
    pub allow_partial: bool,
    /// Do not say which files were written.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory (holds report.json and latency.hlog).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Do not say which files were written.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Options that change how a scenario is read and compiled.
#[derive(Debug, Args, Clone, Default)]
pub struct ScenarioOpts {
    /// Override a scenario value: `--set load.countdown.peak=3000/s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Multiply every rate, user count and burst: `1/100`, `0.5`, `2`.
    #[arg(long, value_name = "FACTOR")]
    pub scale: Option<String>,
    /// Multiply every duration of the load shape and think times: `1/60` runs a 2-hour curve in 2 minutes.
    #[arg(long = "time-scale", value_name = "FACTOR")]
    pub time_scale: Option<String>,
    /// Be strict: a malformed record in a replayed file is an error (exit 2, nothing sent), not
    /// a skipped line; and a run whose error rate is above --max-errors fails (exit 1) even when
    /// its thresholds pass or it has none. CI=true in the environment does the latter too.
    #[arg(long)]
    pub strict: bool,
    /// Run N journeys per user (closed model) or N sessions in all (open model), then end
    /// without waiting for the rest of the plan: for smoke and calibration runs. The same as
    /// `--set load.iterations=N`.
    #[arg(long, value_name = "N", value_parser = parse_iterations)]
    pub iterations: Option<u64>,
}

/// `--iterations N`: a whole number of at least 1.
fn parse_iterations(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a count of iterations: give a whole number of at least 1, like 10"
        )),
    }
}

impl ScenarioOpts {
    /// The `--set` overrides, with `--iterations` as the one it stands for.
    pub fn all_sets(&self) -> Vec<String> {
        let mut sets = self.sets.clone();
        if let Some(n) = self.iterations {
            sets.push(format!("load.iterations={n}"));
        }
        sets
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    #[command(flatten)]
    pub opts: ScenarioOpts,
    /// Base URL of the target; overrides the scenario's `target`.
    #[arg(long)]
    pub target: Option<String>,
    /// Run directory (default: reports/<scenario-name>/<UTC timestamp>/).
    #[arg(long, value_name = "DIR", env = "FLASHCROWD_OUT")]
    pub out: Option<PathBuf>,
    /// Add a threshold (repeatable), e.g. `--threshold "p99 < 300ms"`.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// The error rate above which the summary warns loudly, thresholds or not; with --strict
    /// (or CI=true) the run fails past it.
    #[arg(long = "max-errors", value_name = "PERCENT", default_value = "5%")]
    pub max_errors: String,
    /// Run only segment i of n of the plan (1-based), e.g. `2/3`. In a Kubernetes Indexed Job,
    /// JOB_COMPLETION_INDEX (0-based) with FLASHCROWD_SEGMENTS=n gives the segment instead.
    #[arg(long, value_name = "i/n", env = "FLASHCROWD_SEGMENT")]
    pub segment: Option<String>,
    /// Start at this wall-clock instant (RFC 3339) instead of now; every generator given the same
    /// instant starts (and rendezvouses) together.
    #[arg(long = "start-at", value_name = "RFC3339", env = "FLASHCROWD_START_AT")]
    pub start_at: Option<String>,
    /// Run a `load.calendar` by the wall clock: wait until its `from`, so that every moment comes
    /// at its own instant (the real night). Ctrl-C while waiting cancels; nothing is sent.
    #[arg(long = "on-calendar", conflicts_with = "start_at")]
    pub on_calendar: bool,
    /// Worker threads (shards); default: available cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No live view; print one line every few seconds instead.
    #[arg(long, short)]
    pub quiet: bool,
    /// Send untagged traffic to a non-loopback target anyway.
    #[arg(long = "i-know-this-is-untagged")]
    pub untagged_ok: bool,
    /// Let the scenario's `run` actions execute programs (refused without it, before any load).
    #[arg(long = "allow-run")]
    pub allow_run: bool,
    /// Local addresses to connect from, in turn, to get past the ~28k ephemeral ports of one
    /// address: `127.0.0.2-127.0.0.20`, `10.1.0.0/28`, or a comma-separated list.
    #[arg(long = "source-ips", value_name = "SPEC")]
    pub source_ips: Option<String>,
    /// Resolve the target's host name again this often during the run (like a DNS TTL): new
    /// connections follow the answer, spread over every address it names; connections to a
    /// set that changed are retired. `0s` resolves once, before the run.
    #[arg(long = "resolve-every", value_name = "DURATION", default_value = "30s")]
    pub resolve_every: String,
    /// A hosts file (`ADDRESS NAME...` lines) read before the system resolver, and re-read at
    /// each re-resolution: a name it lists resolves to the addresses it lists. For rehearsing
    /// a DNS failover without touching /etc/hosts.
    #[arg(long = "hosts", value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Serve the live page at http://ADDR/, Prometheus metrics at /metrics, and live control
    /// (POST /control/pause, /control/resume, /control/rate?factor=0.5, /control/stop; only with
    /// the control token). A bare PORT listens on 127.0.0.1; name another address (0.0.0.0:9464)
    /// only when the network is yours: anyone who reaches it can read the run. Example: 9464
    /// (0 picks a free port).
    #[arg(
        long = "metrics-listen",
        value_name = "ADDR",
        env = "FLASHCROWD_METRICS_LISTEN",
        value_parser = crate::ops::server::parse_listen
    )]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The token live control over HTTP needs (`Authorization: Bearer TOKEN`, at least 16
    /// characters); without it one is generated and printed at the start. Reading the page and
    /// /metrics needs none.
    #[arg(
        long = "control-token",
        value_name = "TOKEN",
        env = "FLASHCROWD_CONTROL_TOKEN",
        hide_env_values = true,
        value_parser = parse_control_token
    )]
    pub control_token: Option<String>,
    /// Send the run's metrics to an OpenTelemetry collector once a second over OTLP/HTTP
    /// (protobuf unless --otlp-protocol says otherwise): its base URL (http://127.0.0.1:4318;
    /// `/v1/metrics` is added) or the full metrics URL. Without it, OpenTelemetry's
    /// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (used as given) or OTEL_EXPORTER_OTLP_ENDPOINT (a
    /// base URL) turns the export on.
    #[arg(long, value_name = "URL", env = "FLASHCROWD_OTLP")]
    pub otlp: Option<String>,
    /// How OTLP exports are encoded: `http/protobuf` (the default, as in OpenTelemetry's SDKs)
    /// or `http/json`. Without the flag, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL or
    /// OTEL_EXPORTER_OTLP_PROTOCOL decides.
    #[arg(long = "otlp-protocol", value_name = "PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// A header for the collector, `KEY=VALUE` (repeatable), e.g. its API key; also read from
    /// OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`). Sent, never printed or written.
    #[arg(long = "otlp-header", value_name = "KEY=VALUE")]
    pub otlp_headers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run the sale-night drill instead (scenarios/double11-night.yaml, 2m15s): three moments, a
    /// database failover at sale+30s and a degrade switch thrown by a rule, against the shop's
    /// /admin switches; the report marks each action and how long the shop took to recover.
    #[arg(long)]
    pub drill: bool,
    /// Compress the scenario's durations by this factor (default 1/8 for the countdown: eight
    /// minutes in one; 1 for --drill, which is compressed already).
    #[arg(long = "time-scale", value_name = "FACTOR")]
    pub time_scale: Option<String>,
    /// Multiply the scenario's rates by this factor (default 1/5 for the countdown, which keeps
    /// the demo within one small machine; 1 for --drill).
    #[arg(long, value_name = "FACTOR")]
    pub scale: Option<String>,
    /// Run directory (default: reports/<scenario-name>/<UTC timestamp>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No live view; print one line every few seconds instead.
    #[arg(long, short)]
    pub quiet: bool,
    /// Where the live page listens (a bare PORT: on 127.0.0.1; 0 picks a free one).
    #[arg(long = "metrics-listen", value_name = "ADDR", default_value = "0", value_parser = crate::ops::server::parse_listen)]
    pub metrics_listen: std::net::SocketAddr,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Each segment's endpoint: http://HOST:PORT (its --metrics-listen).
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
    /// Where the merged live page listens (a bare PORT: on 127.0.0.1; 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "0", value_parser = crate::ops::server::parse_listen)]
    pub listen: std::net::SocketAddr,
    /// End this long after the last live segments went missing (default 10s).
    #[arg(long = "give-up", value_name = "DURATION")]
    pub give_up: Option<String>,
    /// Print the merged totals as JSON on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// No line every five seconds; only segments going missing and the end.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    #[command(flatten)]
    pub opts: ScenarioOpts,
    /// Also check a threshold you will pass to `run --threshold` (repeatable): its grammar and
    /// that the requests, journeys, clients and phases it names exist in each scenario.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    #[command(flatten)]
    pub opts: ScenarioOpts,
    /// Also write the rate chart as a PNG.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShopArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Requests served at once; more wait in a queue.
    #[arg(long, default_value_t = 256)]
    pub capacity: usize,
    /// Requests that may wait; beyond it the shop answers 503 "system busy, please retry".
    #[arg(long, default_value_t = 1024)]
    pub queue: usize,
    /// Base service time of an order, in microseconds.
    #[arg(long = "service-us", default_value_t = 200)]
    pub service_us: u64,
    /// Red packets in stock before "sold out".
    #[arg(long, default_value_t = 1000)]
    pub redpackets: u64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The access log (nginx/Apache combined), JSON lines or HAR file; `.gz` is read directly.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// combined | jsonl | har (default: guessed from the content).
    #[arg(long)]
    pub format: Option<String>,
    /// Where to write the scenario (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "SCENARIO")]
    pub output: Option<PathBuf>,
    /// The scenario's target (default: http://127.0.0.1:8080).
    #[arg(long)]
    pub target: Option<String>,
}

/// The shortest control token taken: a secret is redacted wherever it appears in what the live
/// page and the reports show, so a short one would be both guessable and blank out ordinary
/// words (a token `x` turned `max` into `ma[redacted]`).
pub const MIN_CONTROL_TOKEN: usize = 16;

fn parse_control_token(s: &str) -> Result<String, String> {
    let n = s.chars().count();
    if n < MIN_CONTROL_TOKEN {
        return Err(format!(
            "a control token of {n} characters is too short: use at least {MIN_CONTROL_TOKEN} \
             (e.g. `openssl rand -hex 16`), or leave it out and one is generated and printed"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a control token may not contain spaces or control characters".into());
    }
    Ok(s.to_string())
}
