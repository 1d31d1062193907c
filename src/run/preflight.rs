//! Checks before any load is sent: the safety interlock (untagged traffic only to loopback), one
//! probe of the target, and the local port budget. The interlock applies to every address the
//! run calls on its own, the target and the scenario's action URLs alike.

use crate::plan::Plan;
use crate::scenario::Scenario;
use std::time::Duration;

/// Does every request carry the tag header with a value? (Defaults, or every client.)
pub fn every_request_tagged(sc: &Scenario) -> bool {
    let tag = &sc.safety.tag_header;
    let has = |h: &crate::scenario::model::Headers| {
        h.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(tag) && !v.trim().is_empty())
    };
    has(&sc.defaults.headers)
        || (!sc.clients.is_empty() && sc.clients.values().all(|c| has(&c.headers)))
}

/// The safety interlock: traffic to an address off this machine must carry the tag header
/// (`tagged`) unless the person running it said otherwise (`untagged_ok`). `what` names the
/// address in the refusal (`the target http://…`); `fix` says how to tag it.
pub fn interlock(
    loopback: bool,
    tagged: bool,
    untagged_ok: bool,
    what: &str,
    fix: &str,
) -> Result<(), String> {
    if loopback || tagged || untagged_ok {
        return Ok(());
    }
    Err(format!(
        "refusing to send untagged traffic to {what} (not a loopback address).\n\
         Tag test traffic so the target can route it to shadow storage: {fix}, or pass \
         --i-know-this-is-untagged."
    ))
}

/// Is this target on this machine (every address its name resolves to now)?
pub fn is_loopback(t: &crate::engine::compile::Target) -> bool {
    t.addrs.current().iter().all(|a| a.ip().is_loopback())
}

/// The interlock for the load's target. An untagged target let through for being on loopback
/// is kept there when its DNS answers change during the run.
pub fn target_interlock(
    sc: &Scenario,
    target: &crate::engine::compile::Target,
    shown_target: &str,
    untagged_ok: bool,
) -> Result<(), String> {
    if is_loopback(target) && !every_request_tagged(sc) && !untagged_ok {
        target.addrs.keep_to_loopback();
    }
    interlock(
        is_loopback(target),
        every_request_tagged(sc),
        untagged_ok,
        shown_target,
        &format!(
            "add `{}: flashcrowd` to defaults.headers (or change safety.tag_header)",
            sc.safety.tag_header
        ),
    )
}

/// One GET to the target before any load, at the address the run resolved its name to: a
/// refused or unanswered connection stops the run. The error says what failed, and whether it
/// was the probe's time bound (a silent target).
pub fn probe(
    url: &str,
    target: &crate::engine::compile::Target,
    tag_header: &str,
) -> Result<(), (String, bool)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (e.to_string(), false))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .danger_accept_invalid_certs(true)
            .resolve(&target.host, target.addr)
            .build()
            .map_err(|e| (e.to_string(), false))?;
        match client
            .get(url)
            .header(tag_header, "flashcrowd-probe")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err((error_chain(&e), e.is_timeout())),
        }
    })
}

/// An error with all its sources: `error sending request: connection refused`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Local ports one source address has for outgoing connections.
fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
            Some(it.next()?..=it.next()?)
        })
        .map(|r| r.end() - r.start() + 1)
        .unwrap_or(28_232)
}

/// Warns before a plan runs out of local ports: every closed connection holds its port in
/// TIME_WAIT for about 60 s unless the client closes with `reset_on_close`.
pub fn port_warning(sc: &Scenario, plan: &Plan, sources: usize, loopback: bool) -> Option<String> {
    use crate::scenario::model::ConnectionMode;
    if plan.model != crate::plan::Model::Open {
        return None;
    }
    // With tcp_tw_reuse (1: always, 2: loopback), the kernel reuses TIME_WAIT ports for new
    // outgoing connections: they cannot run out that way.
    let tw_reuse = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(0);
    if tw_reuse == 1 || (tw_reuse == 2 && loopback) {
        return None;
    }
    // The busiest 60 s of the plan (a closed port stays in TIME_WAIT about that long).
    let (peak_rate, at) = plan.peak();
    let mut busiest = 0.0f64;
    let mut t = 0.0;
    while t < plan.duration {
        busiest = busiest.max(plan.expected_arrivals(t, t + 60.0));
        t += 1.0;
    }
    let peak = (busiest / 60.0).min(peak_rate);
    let phase = &plan.phases[plan.phase_index_at(at)].name;
    let per_session = crate::plan::waits::requests_per_session(sc, phase);
    let mut per_second = 0.0;
    for c in sc.clients.values() {
        if c.reset_on_close {
            continue;
        }
        let share = crate::scenario::validate::during_entry(&c.during, phase)
            .unwrap_or(&c.share)
            .0;
        per_second += peak
            * share
            * match c.connection {
                ConnectionMode::PerUser => 1.0,
                ConnectionMode::Fresh => per_session,
                ConnectionMode::Shared => 0.0,
            };
    }
    if sc.clients.is_empty() {
        per_second = peak; // the implicit client is per-user
    }
    let needed = per_second * 60.0;
    let have = (ephemeral_ports() * sources.max(1) as u64) as f64;
    (needed > 0.8 * have).then(|| {
        format!(
            "warning: in its busiest minute this plan opens about {per_second:.0} connections/s; closed connections keep \
             their local port for ~60 s (TIME_WAIT), about {needed:.0} ports, but {have:.0} are available.\n\
             Expect `connect` errors. Use `connection: shared`, `reset_on_close: true` on the client, or \
             --source-ips with more local addresses."
        )
    })
}
