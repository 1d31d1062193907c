//! `http:` actions: one request through reqwest, written like a journey's request step (the
//! same type, `scenario::model::Step`: `post: URL`, `headers`, `json` or `body`,
//! `expect: { status }`) and sent as written. A URL that starts with `/` is resolved against the run's target
//! (`--target` over the scenario's), so a drill follows the target it runs against. The safety
//! interlock applies as to the target: a URL off this machine is refused unless the request
//! carries the scenario's tag header (the action's headers, or `defaults.headers`, whose tag the
//! action then sends too).

use super::{ActionKind, Ctx, Done, Permissions};
use crate::scenario::model::Step;
use crate::scenario::Scenario;
use std::net::ToSocketAddrs;

pub struct HttpCall {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    json: Option<serde_json::Value>,
    body: Option<String>,
    /// Accepted status codes; empty: any 2xx.
    expect: Vec<u16>,
}

/// Is every address `host` names on this machine?
fn is_loopback_host(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let port = url.port_or_known_default().unwrap_or(80);
    match (bare, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

impl HttpCall {
    /// `target`: the run's target URL (what a `/path` URL is resolved against).
    pub fn new(
        h: &Step,
        sc: &Scenario,
        target: &str,
        perms: &Permissions,
    ) -> Result<HttpCall, String> {
        let given = h.methods();
        let [(_, method, url)] = given.as_slice() else {
            return Err(
                "http: give exactly one of get, post, put, patch, delete, head with the URL, like `post: http://127.0.0.1:9000/admin/failover`"
                    .into(),
            );
        };
        let parsed = if url.starts_with('/') {
            reqwest::Url::parse(target).and_then(|t| t.join(url)).ok()
        } else {
            reqwest::Url::parse(url).ok()
        }
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            format!(
                "http: `{url}` is not an http:// or https:// URL with a host, nor a /path on the target"
            )
        })?;
        let url = &parsed.to_string();
        if h.json.is_some() && h.body.is_some() {
            return Err("http: give `json` or `body`, not both".into());
        }
        let tag = &sc.safety.tag_header;
        let is_tag =
            |(k, v): &(&String, &String)| k.eq_ignore_ascii_case(tag) && !v.trim().is_empty();
        let mut headers: Vec<(String, String)> = h
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !h.headers.iter().any(|kv| is_tag(&kv)) {
            if let Some((k, v)) = sc.defaults.headers.iter().find(|kv| is_tag(kv)) {
                headers.push((k.clone(), v.clone()));
            }
        }
        let tagged = headers.iter().any(|(k, v)| is_tag(&(k, v)));
        crate::run::preflight::interlock(
            is_loopback_host(&parsed),
            tagged,
            perms.untagged_ok,
            &format!(
                "the action URL {}",
                crate::scenario::redact::redact_url_userinfo(url)
            ),
            &format!("add `{tag}: flashcrowd` to the action's http.headers or to defaults.headers"),
        )?;
        let json = match &h.json {
            Some(v) => {
                Some(serde_json::to_value(v).map_err(|e| format!("http.json is not JSON: {e}"))?)
            }
            None => None,
        };
        Ok(HttpCall {
            method: reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST),
            url: url.to_string(),
            headers,
            json,
            body: h.body.clone(),
            expect: h
                .expect
                .as_ref()
                .and_then(|e| e.status.as_ref())
                .map(|s| s.codes())
                .unwrap_or_default(),
        })
    }
}

impl ActionKind for HttpCall {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn describe(&self) -> String {
        format!(
            "{} {}",
            self.method,
            crate::scenario::redact::redact_url_userinfo(&self.url)
        )
    }

    fn perform(&self, ctx: &Ctx) -> Done {
        let fail = |result: String| Done { ok: false, result };
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return fail(format!("cannot start: {e}")),
        };
        rt.block_on(async {
            let client = match reqwest::Client::builder()
                .timeout(ctx.timeout)
                .danger_accept_invalid_certs(true)
                .build()
            {
                Ok(c) => c,
                Err(e) => return fail(super::super::preflight::error_chain(&e)),
            };
            let mut req = client.request(self.method.clone(), &self.url);
            for (k, v) in &self.headers {
                req = req.header(k, v);
            }
            if let Some(j) = &self.json {
                req = req.json(j);
            } else if let Some(b) = &self.body {
                req = req.body(b.clone());
            }
            match req.send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let ok = if self.expect.is_empty() {
                        resp.status().is_success()
                    } else {
                        self.expect.contains(&code)
                    };
                    let _ = resp.bytes().await;
                    Done {
                        ok,
                        result: if ok || self.expect.is_empty() {
                            format!("status {code}")
                        } else {
                            let want: Vec<String> =
                                self.expect.iter().map(|c| c.to_string()).collect();
                            format!("status {code} (expected {})", want.join(" or "))
                        },
                    }
                }
                Err(e) if e.is_timeout() => fail(format!(
                    "timed out after {}",
                    crate::scenario::units::format_duration(ctx.timeout)
                )),
                Err(e) => fail(super::super::preflight::error_chain(&e)),
            }
        })
    }
}
