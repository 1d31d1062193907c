//! Help lines for the YAML mistakes people make most: an unquoted value that YAML reads as
//! syntax (a JSONPath in flow style, `a: b` inside braces, a leading `*`, `&`, `!`), a missing
//! space after a colon, a key given twice.
//!
//! Pure text inspection of the offending line; it never changes what is an error, only adds
//! the fix to one. Tabs in indentation are found in `spans::tab_in_indentation`.

/// Characters that end or open flow collections, start a comment or make a plain scalar
/// something else when they lead it.
const FLOW_BREAKERS: [char; 5] = ['[', ']', '{', '}', '#'];
const LEADING_INDICATORS: [char; 7] = ['$', '*', '&', '!', '%', '@', '`'];

/// For a YAML syntax error at `column` (1-based) of `line`: a help line telling which value to
/// quote and how, when the line shows the value as the cause.
pub fn syntax_help(line: &str, column: usize) -> Option<String> {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    let in_flow = chars[..at].iter().any(|c| *c == '{' || *c == '[');
    // The value that holds the error: from the last `: ` (or `- `) before it.
    let start = value_start(&chars, at)?;
    let value = value_text(&chars[start..], in_flow);
    if value.is_empty() || value.starts_with('"') || value.starts_with('\'') {
        return None;
    }
    let first = value.chars().next()?;
    let breaks = value.contains(FLOW_BREAKERS) || value.contains(": ");
    if !(LEADING_INDICATORS.contains(&first) || (in_flow && breaks)) {
        return None;
    }
    let why = if first == '*' {
        "a value that starts with `*` is read as an alias".to_string()
    } else if first == '&' {
        "a value that starts with `&` is read as an anchor".to_string()
    } else if first == '!' {
        "a value that starts with `!` is read as a tag".to_string()
    } else if in_flow && breaks {
        let what = value
            .chars()
            .find(|c| FLOW_BREAKERS.contains(c))
            .map(|c| format!("`{c}`"))
            .unwrap_or_else(|| "`: `".into());
        format!("inside `{{ }}` or `[ ]`, {what} in an unquoted value is read as YAML syntax")
    } else {
        format!("an unquoted value cannot start with `{first}` here")
    };
    Some(format!("{why}; quote it: `{}`", quoted(&value)))
}

/// For an unknown key such as `status:200`: the key with the space YAML needs after its colon.
pub fn missing_space_help(word: &str, expected: &[&str]) -> Option<String> {
    let (key, rest) = word.split_once(':')?;
    if rest.is_empty() || rest.starts_with(' ') || rest.starts_with("//") {
        return None;
    }
    if !expected.contains(&key.trim()) {
        return None;
    }
    Some(format!(
        "YAML needs a space after the colon: `{}: {}`",
        key.trim(),
        rest
    ))
}

/// For "expected a mapping …, found the string `status:200`": the line with the space YAML
/// needs after the colon.
pub fn string_for_mapping_help(message: &str) -> Option<String> {
    if !message.starts_with("expected a mapping") {
        return None;
    }
    let found = message
        .split("found the string `")
        .nth(1)?
        .strip_suffix('`')?;
    let (key, rest) = found.split_once(':')?;
    let plain_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '.');
    if !plain_key || rest.is_empty() || rest.starts_with(' ') || rest.starts_with("//") {
        return None;
    }
    Some(format!(
        "YAML needs a space after the colon: `{key}: {rest}`"
    ))
}

/// For a syntax error reported on the line after `line`: a ` #` inside a flow collection on
/// `line` starts a comment that swallows the collection's closer.
pub fn comment_in_flow_help(line: &str) -> Option<String> {
    let open = line.find(['{', '['])?;
    let hash = open + line[open..].find(" #")?;
    let comment = &line[hash + 2..];
    let closers: String = comment
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| matches!(c, '}' | ']' | ' '))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .filter(|c| *c != ' ')
        .collect();
    if comment.starts_with(' ') && !closers.is_empty() {
        // `{ status: 200   # must be found }`: a comment as people write them, that swallowed
        // the closer. Move it out.
        let text = comment.trim_end().trim_end_matches(['}', ']', ' ']).trim();
        return Some(format!(
            "` #` starts a comment, which cuts the line and its closing `{closers}`; end the braces before the comment: `{} {closers}   # {text}`",
            line[..hash].trim()
        ));
    }
    let chars: Vec<char> = line.chars().collect();
    let at = line[..hash].chars().count();
    let start = value_start(&chars, at)?;
    let value = value_text(&chars[start..], true);
    if value.is_empty() || value.starts_with(['"', '\'']) {
        return None;
    }
    Some(format!(
        "` #` starts a comment, which cuts the line and its closing bracket; quote the value: `{}`",
        quoted(&value)
    ))
}

/// For serde_yaml's "duplicate entry with key \"K\"" reported at `line` (1-based, the mapping's
/// first line): a help line naming the lines on which `K` appears at that mapping's
/// indentation, and the line of its second appearance (where the mistake is).
pub fn duplicate_key_help(
    lines: &[&str],
    line: usize,
    message: &str,
) -> Option<(String, Option<usize>)> {
    let key = message
        .split("duplicate entry with key \"")
        .nth(1)?
        .split('"')
        .next()?;
    let first = line.checked_sub(1)?;
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let indent = indent_of(lines.get(first)?);
    let mut seen = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(first) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent_of(l) < indent {
            break;
        }
        if indent_of(l) == indent {
            let k = t.trim_start_matches("- ");
            let k = k
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            if k == key {
                seen.push(i + 1);
            }
        }
    }
    let lines_said = match seen.as_slice() {
        [a, b, ..] => format!(" (lines {a} and {b})"),
        _ => String::new(),
    };
    Some((
        format!(
            "`{key}` is given twice in one mapping{lines_said}: a key may appear once; keep the one you mean and delete the other"
        ),
        seen.get(1).copied(),
    ))
}

fn value_start(chars: &[char], at: usize) -> Option<usize> {
    let mut i = at.min(chars.len().saturating_sub(1));
    loop {
        if i >= 1 && (chars[i - 1] == ':' || chars[i - 1] == '-') && chars[i] == ' ' {
            // skip the spaces after the indicator
            let mut s = i;
            while s < chars.len() && chars[s] == ' ' {
                s += 1;
            }
            return Some(s);
        }
        if i == 0 {
            return None;
        }
        i -= 1;
    }
}

fn value_text(rest: &[char], in_flow: bool) -> String {
    let s: String = rest.iter().collect();
    let mut s = s.trim_end().to_string();
    if in_flow {
        // Drop the closers of the surrounding collection and a following `, key: value`.
        while s.ends_with('}') || s.ends_with(']') {
            let cut = s.len() - 1;
            s.truncate(cut);
            s = s.trim_end().to_string();
            if !s.ends_with(['}', ']']) {
                break;
            }
        }
        if let Some(p) = next_pair(&s) {
            s.truncate(p);
        }
    }
    s.trim_end_matches(',').trim().to_string()
}

/// The byte offset of a `, key:` that starts the next pair of a flow mapping.
fn next_pair(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = s[from..].find(", ") {
        let p = from + p;
        let after = &s[p + 2..];
        let key: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '$')
            .collect();
        if !key.is_empty() && after[key.len()..].starts_with(':') {
            return Some(p);
        }
        from = p + 2;
    }
    None
}

fn quoted(v: &str) -> String {
    if v.contains('"') && !v.contains('\'') {
        format!("'{v}'")
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_in_flow_style_is_quoted() {
        let line = "        capture: { sku: $.items[0].id }";
        let h = syntax_help(line, 32).unwrap();
        assert!(h.ends_with("quote it: `\"$.items[0].id\"`"), "{h}");
    }

    #[test]
    fn colon_space_inside_braces_is_quoted() {
        let h = syntax_help("        headers: { X-A: a: b }", 26).unwrap();
        assert!(h.contains("`: `") && h.ends_with("`\"a: b\"`"), "{h}");
    }

    #[test]
    fn leading_star_is_an_alias() {
        let h = syntax_help("        json: { a: *x }", 20).unwrap();
        assert!(
            h.starts_with("a value that starts with `*` is read as an alias"),
            "{h}"
        );
        assert!(h.ends_with("`\"*x\"`"), "{h}");
    }

    #[test]
    fn a_following_pair_is_not_part_of_the_value() {
        let h = syntax_help("  capture: { sku: $.items[0].id, name: $.n }", 26).unwrap();
        assert!(h.ends_with("`\"$.items[0].id\"`"), "{h}");
    }

    #[test]
    fn plain_values_get_no_quote_advice() {
        assert_eq!(syntax_help("  get: /api/items", 8), None);
        assert_eq!(syntax_help("  capture: { sku: \"$.a[0]\" }", 20), None);
    }

    #[test]
    fn a_comment_inside_braces_is_quoted() {
        let h = comment_in_flow_help("        query: { q: red #1 }").unwrap();
        assert!(h.ends_with("`\"red #1\"`"), "{h}");
        assert_eq!(comment_in_flow_help("  get: /a # a comment"), None);
        // A comment as people write them, that swallowed the closer: move it out.
        let h = comment_in_flow_help("        expect: { status: 200   # must be found }").unwrap();
        assert!(
            h.ends_with(
                "end the braces before the comment: `expect: { status: 200 }   # must be found`"
            ),
            "{h}"
        );
    }

    #[test]
    fn a_string_where_a_mapping_belongs_may_lack_a_space() {
        assert_eq!(
            string_for_mapping_help(
                "expected a mapping (`key: value` lines), found the string `status:200`"
            )
            .as_deref(),
            Some("YAML needs a space after the colon: `status: 200`")
        );
        assert_eq!(
            string_for_mapping_help(
                "expected a mapping (`key: value` lines), found the string `x`"
            ),
            None
        );
    }

    #[test]
    fn missing_space_after_colon() {
        assert_eq!(
            missing_space_help("status:200", &["status", "json"]).as_deref(),
            Some("YAML needs a space after the colon: `status: 200`")
        );
        assert_eq!(missing_space_help("stats:200", &["status"]), None);
        assert_eq!(missing_space_help("http://x", &["http"]), None);
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let lines = [
            "journeys:",
            "  j:",
            "    share: 100%",
            "    steps: []",
            "    share: 50%",
        ];
        let (h, second) = duplicate_key_help(
            &lines,
            3,
            "journeys.j: duplicate entry with key \"share\" at line 3 column 5",
        )
        .unwrap();
        assert!(
            h.starts_with("`share` is given twice in one mapping (lines 3 and 5)"),
            "{h}"
        );
        assert_eq!(second, Some(5));
    }
}
