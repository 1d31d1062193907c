//! Changes applied to the YAML tree before it is read into types: `--set key.path=value`
//! overrides and `${env:NAME}` substitution in string values.
//!
//! Both work on the `serde_yaml::Value` tree so that the typed reading and the validation see one
//! scenario, whatever its source. This module does not read files or decide what a valid
//! scenario is; it only refuses paths that cannot be applied.

use super::de::key_text;
use super::spans::{KeyPath, Seg};
use serde_yaml::{Mapping, Value};

/// A problem with one override or substitution, at a path of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideError {
    /// Where in the file the problem is (the `${env:…}` value), or None for a `--set` argument.
    pub path: Option<KeyPath>,
    pub message: String,
    pub help: Option<String>,
}

/// Maps whose keys are names the scenario defines: `--set` may change their entries but not
/// invent new ones (a misspelt client would otherwise become a new client).
const NAMED_MAPS: &[&str] = &["clients", "journeys", "data"];

/// Applies one `--set key.path=value`, returning the path it set.
pub fn apply_set(root: &mut Value, arg: &str) -> Result<KeyPath, OverrideError> {
    let err = |message: String, help: Option<String>| OverrideError {
        path: None,
        message: format!("--set {arg}: {message}"),
        help,
    };
    let Some((path_s, value_s)) = arg.split_once('=') else {
        return Err(err(
            "expected KEY=VALUE".into(),
            Some("for example --set load.countdown.peak=3000/s".into()),
        ));
    };
    let path = KeyPath::parse(path_s.trim());
    if path.is_root() {
        return Err(err("the key path is empty".into(), None));
    }
    let value = parse_value(value_s);
    let mut cur = root;
    let mut walked = KeyPath::root();
    let last = path.0.len() - 1;
    for (i, seg) in path.0.iter().enumerate() {
        let is_last = i == last;
        match seg {
            Seg::Key(k) => {
                let Value::Mapping(m) = cur else {
                    return Err(err(
                        format!(
                            "`{}` is {}, not a mapping with keys",
                            display_or_top(&walked),
                            super::units::describe(cur)
                        ),
                        None,
                    ));
                };
                let exists = m.contains_key(k.as_str());
                if !exists {
                    let names: Vec<String> = m.keys().map(key_text).collect();
                    let parent_named = walked.0.len() == 1
                        && matches!(&walked.0[0], Seg::Key(p) if NAMED_MAPS.contains(&p.as_str()));
                    if parent_named {
                        return Err(err(
                            format!("there is no `{k}` in `{walked}`"),
                            Some(
                                super::did_you_mean(k, names.iter().map(String::as_str))
                                    .unwrap_or_else(|| {
                                        format!("the scenario defines: {}", names.join(", "))
                                    }),
                            ),
                        ));
                    }
                    if !is_last {
                        // A block the file leaves out (`defaults`, say): create it; the typed
                        // reading refuses keys that the format does not know.
                        m.insert(Value::String(k.clone()), Value::Mapping(Mapping::new()));
                    }
                }
                walked = walked.key(k);
                if is_last {
                    m.insert(Value::String(k.clone()), value);
                    return Ok(path);
                }
                cur = m.get_mut(k.as_str()).expect("inserted above");
            }
            Seg::Index(n) => {
                let Value::Sequence(s) = cur else {
                    return Err(err(
                        format!(
                            "`{}` is {}, not a list",
                            display_or_top(&walked),
                            super::units::describe(cur)
                        ),
                        None,
                    ));
                };
                if *n >= s.len() {
                    return Err(err(
                        format!("`{walked}` has {} items; [{n}] is past its end", s.len()),
                        Some("indices count from 0".into()),
                    ));
                }
                walked = walked.index(*n);
                if is_last {
                    s[*n] = value;
                    return Ok(path);
                }
                cur = &mut s[*n];
            }
        }
    }
    Ok(path)
}

fn display_or_top(p: &KeyPath) -> String {
    if p.is_root() {
        "the scenario".into()
    } else {
        p.to_string()
    }
}

/// Reads a `--set` value as YAML: `3000/s` and `60%` are strings, `5` a number, `true` a
/// boolean, `[1s, 3s]` a list. Anything that is not a scalar or a flow collection stays text.
fn parse_value(s: &str) -> Value {
    let t = s.trim();
    match serde_yaml::from_str::<Value>(t) {
        Ok(v @ (Value::Sequence(_) | Value::Mapping(_))) if t.starts_with(['[', '{']) => v,
        Ok(Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_)) | Err(_) => {
            Value::String(t.to_string())
        }
        Ok(v) => v,
    }
}

/// Replaces `${env:NAME}` in every string value of the tree (not in keys) with the variable's
/// value, read through `lookup`. Returns the substituted values (secrets to redact later).
pub fn substitute_env(
    root: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Vec<OverrideError>> {
    let mut secrets = Vec::new();
    let mut errors = Vec::new();
    walk(root, &KeyPath::root(), lookup, &mut secrets, &mut errors);
    if errors.is_empty() {
        secrets.sort();
        secrets.dedup();
        Ok(secrets)
    } else {
        Err(errors)
    }
}

fn walk(
    v: &mut Value,
    path: &KeyPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
    errors: &mut Vec<OverrideError>,
) {
    match v {
        Value::String(s) if s.contains("${env:") => match expand(s, lookup) {
            Ok((out, used)) => {
                secrets.extend(used.into_iter().filter(|u| !u.is_empty()));
                *s = out;
            }
            Err((message, help)) => errors.push(OverrideError {
                path: Some(path.clone()),
                message,
                help,
            }),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.index(i), lookup, secrets, errors);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                walk(item, &path.key(&key_text(k)), lookup, secrets, errors);
            }
        }
        Value::Tagged(t) => walk(&mut t.value, path, lookup, secrets, errors),
        _ => {}
    }
}

/// Expands the `${env:NAME}` references of one string.
#[allow(clippy::type_complexity)]
fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), (String, Option<String>)> {
    let mut out = String::with_capacity(s.len());
    let mut used = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${env:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let Some(end) = after.find('}') else {
            return Err((
                "`${env:` is not closed: write ${env:NAME}".into(),
                Some("to keep the text literally, avoid `${env:` in this value".into()),
            ));
        };
        let name = after[..end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((
                format!("`${{env:{name}}}`: an environment variable name is letters, digits and _"),
                None,
            ));
        }
        match lookup(name) {
            Some(val) => {
                out.push_str(&val);
                used.push(val);
            }
            None => {
                return Err((
                    format!(
                        "the environment variable `{name}` is not set (used as ${{env:{name}}})"
                    ),
                    Some(format!("set it before running: export {name}=…")),
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn set_replaces_a_nested_value_read_as_a_yaml_scalar() {
        let mut v = tree("load:\n  countdown:\n    peak: 6000/s\n    rise: 26s\n");
        apply_set(&mut v, "load.countdown.peak=3000/s").unwrap();
        assert_eq!(
            v["load"]["countdown"]["peak"],
            Value::String("3000/s".into())
        );
        apply_set(&mut v, "load.seed=7").unwrap();
        assert_eq!(v["load"]["seed"], Value::Number(7.into()));
    }

    #[test]
    fn set_of_an_unknown_client_suggests_the_close_name() {
        let mut v = tree("clients:\n  pc-web: { share: 20% }\n  mobile: { share: 80% }\n");
        let e = apply_set(&mut v, "clients.pc-wbe.share=20%").unwrap_err();
        assert!(
            e.message.contains("there is no `pc-wbe` in `clients`"),
            "{}",
            e.message
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `pc-web`?"));
    }

    #[test]
    fn set_indexes_lists_and_refuses_past_the_end() {
        let mut v = tree("load:\n  stages:\n    - { rate: 5/s, for: 1s }\n");
        apply_set(&mut v, "load.stages[0].rate=9/s").unwrap();
        assert_eq!(v["load"]["stages"][0]["rate"], Value::String("9/s".into()));
        let e = apply_set(&mut v, "load.stages[3].rate=9/s").unwrap_err();
        assert!(e.message.contains("past its end"));
    }

    #[test]
    fn set_without_equals_is_refused() {
        let mut v = tree("a: 1\n");
        assert!(apply_set(&mut v, "a")
            .unwrap_err()
            .message
            .contains("KEY=VALUE"));
    }

    #[test]
    fn env_references_are_replaced_and_recorded() {
        let mut v = tree(
            "target: \"${env:HOST}:8080\"\nheaders: { Authorization: \"Bearer ${env:TOKEN}\" }\n",
        );
        let lookup = |n: &str| match n {
            "HOST" => Some("http://10.0.0.1".to_string()),
            "TOKEN" => Some("s3cret".to_string()),
            _ => None,
        };
        let secrets = substitute_env(&mut v, &lookup).unwrap();
        assert_eq!(v["target"], Value::String("http://10.0.0.1:8080".into()));
        assert_eq!(
            v["headers"]["Authorization"],
            Value::String("Bearer s3cret".into())
        );
        assert_eq!(
            secrets,
            vec!["http://10.0.0.1".to_string(), "s3cret".to_string()]
        );
    }

    #[test]
    fn a_missing_env_variable_is_named_at_its_path() {
        let mut v = tree("a:\n  b: \"${env:NOPE_NOT_SET}\"\n");
        let errs = substitute_env(&mut v, &|_| None).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path.as_ref().unwrap().to_string(), "a.b");
        assert!(errs[0].message.contains("`NOPE_NOT_SET` is not set"));
    }
}
