//! Request names for recorded requests, so that a million URLs make a few dozen histograms:
//! the first `names:` pattern that matches the path (`/api/items/{id}` matches `/api/items/42`;
//! `{…}` stands for one path segment), else the path with its ids folded to `:id` — a segment
//! that is a number, a UUID, or a token of 8 or more characters a third of which are digits.
//! The query string never takes part in a name.

/// Compiled `names:` patterns.
#[derive(Debug, Clone, Default)]
pub struct Names {
    patterns: Vec<(String, Vec<Seg>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Any,
}

/// Is this path segment an id?
pub fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if digits == seg.len() {
        return true;
    }
    let b = seg.as_bytes();
    if b.len() == 36
        && [8, 13, 18, 23].iter().all(|i| b[*i] == b'-')
        && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-')
    {
        return true;
    }
    seg.len() >= 8 && digits * 3 >= seg.len()
}

/// `/api/items/42/reviews` → `/api/items/:id/reviews`.
pub fn fold(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(seg) { ":id" } else { seg });
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

impl Names {
    /// Compiles patterns; an error names the pattern that is not a path.
    pub fn new(patterns: &[String]) -> Result<Names, String> {
        let mut out = Vec::new();
        for p in patterns {
            if !p.starts_with('/') {
                return Err(format!(
                    "`{p}` is not a path pattern: start it with /, like /api/items/{{id}}"
                ));
            }
            let segs = p
                .split('/')
                .map(|s| {
                    if s.starts_with('{') && s.ends_with('}') && s.len() >= 2 {
                        Seg::Any
                    } else {
                        Seg::Lit(s.to_string())
                    }
                })
                .collect();
            out.push((p.clone(), segs));
        }
        Ok(Names { patterns: out })
    }

    /// The path part of the name: the matching pattern, or the folded path.
    pub fn path_name(&self, path: &str) -> String {
        'next: for (name, segs) in &self.patterns {
            let mut parts = path.split('/');
            for s in segs {
                match (parts.next(), s) {
                    (Some(p), Seg::Lit(l)) if p == l => {}
                    (Some(p), Seg::Any) if !p.is_empty() => {}
                    _ => continue 'next,
                }
            }
            if parts.next().is_none() {
                return name.clone();
            }
        }
        fold(path)
    }

    /// `GET /api/items/:id`.
    pub fn name(&self, method: &str, path: &str) -> String {
        format!("{method} {}", self.path_name(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fold_and_words_stay() {
        assert_eq!(fold("/api/items/123"), "/api/items/:id");
        assert_eq!(
            fold("/u/0b5e8f6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cart"),
            "/u/:id/cart"
        );
        assert_eq!(fold("/api/orders/ord7a1b2c3d4"), "/api/orders/:id");
        assert_eq!(fold("/api/items"), "/api/items");
        assert_eq!(fold("/static/app-v2.js"), "/static/app-v2.js");
        assert_eq!(fold("/"), "/");
        assert_eq!(fold(""), "/");
    }

    #[test]
    fn the_first_matching_pattern_names_the_request() {
        let n = Names::new(&["/api/items/{id}".into(), "/api/{any}/{id}".into()]).unwrap();
        assert_eq!(n.name("GET", "/api/items/abc"), "GET /api/items/{id}");
        assert_eq!(n.name("GET", "/api/users/7"), "GET /api/{any}/{id}");
        assert_eq!(n.name("GET", "/api/items/7/x"), "GET /api/items/:id/x");
        assert!(Names::new(&["api".into()]).is_err());
    }
}
