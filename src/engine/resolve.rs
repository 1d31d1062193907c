//! The target's addresses while the run goes: its host name resolved before the run and again
//! every `every` (a TTL-like interval, `--resolve-every`), from a hosts file when one is given
//! (`--hosts FILE`, re-read each time: a name it lists resolves to the addresses it lists) or
//! else from the system resolver. New connections are spread over every address, in turn; when
//! the set changes, the connections opened before are retired as they come back, so the load
//! follows a DNS change within one interval (requests in flight finish where they are).
//!
//! The safety interlock holds for addresses found later too: a run allowed only because its
//! target was on loopback never turns to an address that is not (such answers are ignored, and
//! said so once).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The default re-resolution interval.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);

/// How the target's name is resolved.
#[derive(Debug, Clone, Default)]
pub struct ResolveOpts {
    /// A hosts file (`ADDRESS NAME...` lines, `#` comments) consulted before the system
    /// resolver, re-read at each re-resolution.
    pub hosts: Option<PathBuf>,
    /// Re-resolve this often; None or zero: once, before the run.
    pub every: Option<Duration>,
}

/// The current addresses of the target, shared by the shards.
#[derive(Debug)]
pub struct Addrs {
    host: String,
    port: u16,
    opts: ResolveOpts,
    list: RwLock<Arc<[SocketAddr]>>,
    /// Bumped whenever the set changes: connections opened under an older one are retired.
    generation: AtomicU64,
    /// Only loopback addresses may be used (the interlock let the run through for that).
    loopback_only: AtomicBool,
    warned: AtomicBool,
}

/// The addresses `host` has in a hosts file's text, in order.
pub fn from_hosts(text: &str, host: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|n| n.eq_ignore_ascii_case(host)) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

fn lookup(host: &str, port: u16, hosts: Option<&Path>) -> Result<Vec<SocketAddr>, String> {
    if let Some(path) = hosts {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--hosts: cannot read {}: {e}", path.display()))?;
        let ips = from_hosts(&text, host);
        if !ips.is_empty() {
            return Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect());
        }
    }
    use std::net::ToSocketAddrs;
    let mut v: Vec<SocketAddr> = Vec::new();
    for a in (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the target host `{host}`: {e}"))?
    {
        if !v.contains(&a) {
            v.push(a);
        }
    }
    if v.is_empty() {
        return Err(format!("the target host `{host}` has no address"));
    }
    Ok(v)
}

impl Addrs {
    /// Resolves `host` once, now.
    pub fn resolve(host: &str, port: u16, opts: &ResolveOpts) -> Result<Addrs, String> {
        let list = lookup(host, port, opts.hosts.as_deref())?;
        Ok(Addrs {
            host: host.to_string(),
            port,
            opts: opts.clone(),
            list: RwLock::new(list.into()),
            generation: AtomicU64::new(0),
            loopback_only: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        })
    }

    /// The current addresses.
    pub fn current(&self) -> Arc<[SocketAddr]> {
        self.list
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The `i`-th address in turn.
    pub fn pick(&self, i: usize) -> SocketAddr {
        let l = self.current();
        l[i % l.len()]
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// From now on only loopback addresses are taken.
    pub fn keep_to_loopback(&self) {
        self.loopback_only.store(true, Ordering::Relaxed);
    }

    pub fn every(&self) -> Option<Duration> {
        self.opts.every.filter(|d| !d.is_zero())
    }

    /// Resolves again; a changed set replaces the current one (and bumps the generation). A
    /// failed lookup, an empty answer or (loopback only) an answer off loopback keeps the
    /// current set. Returns whether it changed.
    pub fn refresh(&self) -> bool {
        let mut found = match lookup(&self.host, self.port, self.opts.hosts.as_deref()) {
            Ok(v) => v,
            Err(_) => return false,
        };
        if self.loopback_only.load(Ordering::Relaxed) {
            let before = found.len();
            found.retain(|a| a.ip().is_loopback());
            if found.len() < before && !self.warned.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "warning: `{}` now resolves to addresses off loopback; they are not used (the run was let through untagged for a loopback target)",
                    self.host
                );
            }
        }
        if found.is_empty() {
            return false;
        }
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if list[..] == found[..] {
            return false;
        }
        *list = found.into();
        self.generation.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// A thread that refreshes `addrs` every interval until dropped.
pub struct Refresher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Refresher {
    /// Starts refreshing (nothing when the addresses are resolved once only).
    pub fn start(addrs: Arc<Addrs>) -> Refresher {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = addrs.every().and_then(|every| {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("flashcrowd-resolve".into())
                .spawn(move || {
                    let mut next = std::time::Instant::now() + every;
                    while !stop.load(Ordering::Relaxed) {
                        let now = std::time::Instant::now();
                        if now >= next {
                            addrs.refresh();
                            next = now + every;
                        }
                        std::thread::park_timeout(
                            next.saturating_duration_since(now)
                                .min(Duration::from_millis(50)),
                        );
                    }
                })
                .ok()
        });
        Refresher { stop, thread }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_name_addresses_in_order() {
        let text = "# a comment\n127.0.0.2 shop.test other # trailing\n\n::1 shop.test\nnot-an-ip shop.test\n127.0.0.2 SHOP.TEST\n127.0.0.3 shopXtest\n";
        assert_eq!(
            from_hosts(text, "shop.test"),
            vec![
                "127.0.0.2".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(from_hosts(text, "absent.test").is_empty());
    }

    #[test]
    fn a_changed_hosts_file_changes_the_set_and_its_generation() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 shop.test\n").unwrap();
        let opts = ResolveOpts {
            hosts: Some(hosts.clone()),
            every: Some(Duration::from_secs(1)),
        };
        let a = Addrs::resolve("shop.test", 8080, &opts).unwrap();
        assert_eq!(a.pick(5), "127.0.0.1:8080".parse().unwrap());
        assert!(!a.refresh(), "same answer, no change");
        std::fs::write(&hosts, "127.0.0.2 shop.test\n127.0.0.3 shop.test\n").unwrap();
        assert!(a.refresh());
        assert_eq!(a.generation(), 1);
        assert_eq!(
            (a.pick(0), a.pick(1)),
            (
                "127.0.0.2:8080".parse().unwrap(),
                "127.0.0.3:8080".parse().unwrap()
            )
        );
        // Loopback only: an answer off loopback is ignored.
        a.keep_to_loopback();
        std::fs::write(&hosts, "192.0.2.1 shop.test\n").unwrap();
        assert!(!a.refresh());
        assert_eq!(a.pick(0), "127.0.0.2:8080".parse().unwrap());
        // A missing file keeps the current set.
        std::fs::remove_file(&hosts).unwrap();
        assert!(!a.refresh());
        assert_eq!(a.generation(), 1);
    }
}
