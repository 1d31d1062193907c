//! Removing secrets from text bound for an output (reports, logs, the scenario as run):
//! substituted `${env:…}` values, credential header values, URL user-info.

/// The scenario text as run, with secrets removed: values of Authorization, Cookie and
/// Proxy-Authorization keys, and every literal secret value given (e.g. expanded `${env:…}`).
pub fn redact_scenario(source: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let lower = line.to_ascii_lowercase();
        let sensitive = SENSITIVE_HEADERS.iter().find_map(|k| {
            lower
                .find(&format!("{k}:"))
                .or_else(|| lower.find(&format!("{k}\":")))
                .map(|i| i + k.len())
        });
        match sensitive {
            Some(i) => {
                let colon = line[i..].find(':').map(|c| i + c + 1).unwrap_or(line.len());
                out.push_str(&line[..colon]);
                out.push_str(" \"[redacted]\"");
                // Keep a closing brace of a flow mapping so the YAML stays readable.
                if line.trim_end().ends_with('}') {
                    out.push_str(" }");
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for s in secrets {
        if s.len() >= 3 {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    redact_url_userinfo(&out)
}

/// `scheme://user:password@host…` → `scheme://[redacted]@host…`, for every URL in `text`.
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first of these; user-info is what precedes its last '@'.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>' | '\\')
                    || c.is_whitespace()
                    || c.is_control()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("[redacted]");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Removes every secret a run knows of from text bound for an output: substituted `${env:…}`
/// values, the values of `Authorization`, `Cookie` and `Proxy-Authorization` headers (defaults,
/// clients and steps), and URL user-info.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    literals: Vec<String>,
}

const SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

impl Redactor {
    pub fn new(loaded: &crate::scenario::Loaded) -> Redactor {
        let sc = &loaded.scenario;
        let mut literals: Vec<String> = loaded.secrets.clone();
        let mut headers = |h: &crate::scenario::model::Headers| {
            for (k, v) in h {
                if SENSITIVE_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                    literals.push(v.clone());
                    // `Bearer abc`: the credential alone, in case the scheme is printed apart.
                    if let Some((_, cred)) = v.split_once(' ') {
                        literals.push(cred.trim().to_string());
                    }
                }
            }
        };
        headers(&sc.defaults.headers);
        for c in sc.clients.values() {
            headers(&c.headers);
        }
        for j in sc.journeys.values() {
            for st in &j.steps {
                headers(&st.headers);
            }
        }
        // Short values ("1", "on") would redact ordinary text and protect nothing.
        literals.retain(|l| l.len() >= 4);
        // Longest first, so a value containing another is removed whole.
        literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
        literals.dedup();
        Redactor { literals }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = redact_url_userinfo(text);
        for l in &self.literals {
            if out.contains(l.as_str()) {
                out = out.replace(l.as_str(), "[redacted]");
            }
        }
        out
    }

    /// `apply` for file contents: UTF-8 text is redacted, other bytes (images) pass unchanged.
    pub fn apply_bytes<'a>(&self, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        match std::str::from_utf8(bytes) {
            Ok(t) => {
                let r = self.apply(t);
                if r == t {
                    std::borrow::Cow::Borrowed(bytes)
                } else {
                    std::borrow::Cow::Owned(r.into_bytes())
                }
            }
            Err(_) => std::borrow::Cow::Borrowed(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_and_cookie_values_are_redacted() {
        let src = "defaults:\n  headers:\n    Authorization: Bearer abc123\n    X-Load-Test: flashcrowd\n  cookie: \"s=1\"\n";
        let out = redact_scenario(src, &["flashcrowd".into()]);
        assert!(!out.contains("abc123"));
        assert!(!out.contains("s=1"));
        assert!(out.contains("Authorization: \"[redacted]\""));
        assert!(out.contains("X-Load-Test: [redacted]"));
    }

    #[test]
    fn url_userinfo_is_redacted_everywhere() {
        assert_eq!(
            redact_url_userinfo("target: http://u:p@127.0.0.1:80/x and \"https://tok@h\""),
            "target: http://[redacted]@127.0.0.1:80/x and \"https://[redacted]@h\""
        );
        assert_eq!(redact_url_userinfo("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(redact_url_userinfo("no urls, a@b"), "no urls, a@b");
        let out = redact_scenario("target: http://me:s3cret@10.0.0.1\n", &[]);
        assert!(!out.contains("s3cret"), "{out}");
    }
}
