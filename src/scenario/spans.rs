//! Where each value of a scenario file is: a map from a key path (`load.stages[0].for`) to the
//! line and column of the key and of its value.
//!
//! serde_yaml reports custom errors (a bad unit) at the start of the enclosing mapping; this index
//! lets every error point at the value itself. It is built from yaml-rust2's event stream and
//! never expands aliases: an alias is recorded where it is written, and its expanded size is
//! computed arithmetically so that an alias bomb is refused before anything expands it. The same
//! pass refuses the other hostile shapes a YAML file can take: several documents, an empty
//! document, nesting deeper than a scenario needs. It does not know the scenario's schema.

use std::collections::HashMap;
use std::fmt;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted (a scenario needs about ten levels; JSON bodies add a few).
pub const MAX_DEPTH: usize = 64;
/// Most values a document may hold once its aliases are expanded.
pub const MAX_EXPANDED_NODES: u64 = 200_000;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path from the document root. Displays as `load.stages[0].for`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// Parses `a.b[0].c` (keys may not contain `.` or `[` in this notation).
    pub fn parse(s: &str) -> KeyPath {
        let mut segs = Vec::new();
        for part in s.split('.').filter(|p| !p.is_empty()) {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                segs.push(Seg::Key(key.to_string()));
            }
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                match stripped[..end].trim().parse::<usize>() {
                    Ok(i) => segs.push(Seg::Index(i)),
                    Err(_) => segs.push(Seg::Key(stripped[..end].to_string())),
                }
                rest = &stripped[end + 1..];
            }
        }
        KeyPath(segs)
    }

    pub fn key(&self, k: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }

    pub fn index(&self, i: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }

    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A place in the source: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// How a scalar value was written, so that an offset inside it can be mapped to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
    /// A mapping or a sequence.
    Collection,
    /// `*name`: the value is written elsewhere.
    Alias,
}

/// Where one value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The key, for values of a mapping.
    pub key: Option<Pos>,
    pub value: Pos,
    pub style: Style,
}

/// Why a file cannot be read as one YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanError {
    pub pos: Pos,
    pub message: String,
    pub help: Option<String>,
}

/// Key paths to source positions for one YAML document.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: HashMap<KeyPath, Span>,
}

impl SpanIndex {
    pub fn get(&self, path: &KeyPath) -> Option<&Span> {
        self.spans.get(path)
    }

    /// The span of `path`, or of its longest prefix that is written in the file (a value that
    /// came through an alias, or a missing key), with whether it is the exact path.
    pub fn nearest(&self, path: &KeyPath) -> Option<(&Span, bool)> {
        let mut segs = path.0.as_slice();
        let mut exact = true;
        loop {
            if let Some(s) = self.spans.get(&KeyPath(segs.to_vec())) {
                return Some((s, exact));
            }
            if segs.is_empty() {
                return None;
            }
            segs = &segs[..segs.len() - 1];
            exact = false;
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

enum Frame {
    Map {
        path: KeyPath,
        /// The key read and waiting for its value.
        key: Option<(String, Pos)>,
        anchor: usize,
        size: u64,
    },
    Seq {
        path: KeyPath,
        next: usize,
        anchor: usize,
        size: u64,
    },
    /// A collection used as a mapping key: skipped, only its size is counted.
    ComplexKey { depth: usize, size: u64 },
}

fn scalar_key(s: &str) -> String {
    s.to_string()
}

/// Builds the index for `text`. Fails on a syntax error, an empty document, more than one
/// document, nesting deeper than [`MAX_DEPTH`], or aliases expanding past [`MAX_EXPANDED_NODES`].
pub fn index(text: &str) -> Result<SpanIndex, SpanError> {
    let mut parser = Parser::new_from_str(text);
    let mut idx = SpanIndex::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchor_sizes: HashMap<usize, u64> = HashMap::new();
    let mut expanded: u64 = 0;
    let mut documents = 0usize;
    let mut root_seen = false;
    let mut root_null_at: Option<Pos> = None;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            if e.info().contains("recursion limit") {
                // The scanner looks ahead and may hit its own depth limit before ours.
                return too_deep(Pos::from(*e.marker()));
            }
            SpanError {
                pos: Pos::from(*e.marker()),
                message: syntax_message(e.info()),
                help: None,
            }
        })?;
        let pos = Pos::from(mark);
        // Sizes of nodes that start here, before they are attached to their parent.
        let (node_size, anchor, style, opens) = match &ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(SpanError {
                        pos,
                        message: "the file holds more than one YAML document (a second `---` here)"
                            .into(),
                        help: Some(
                            "a scenario is one document: put each scenario in its own file".into(),
                        ),
                    });
                }
                continue;
            }
            Event::Scalar(v, st, anchor, _) => {
                let style = match st {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                };
                if stack.is_empty() && *st == TScalarStyle::Plain && is_null(v) {
                    root_null_at = Some(pos);
                }
                (1u64, *anchor, style, None)
            }
            Event::Alias(id) => {
                let size = anchor_sizes.get(id).copied().unwrap_or(1);
                (size, 0, Style::Alias, None)
            }
            Event::MappingStart(anchor, _) => (0, *anchor, Style::Collection, Some(true)),
            Event::SequenceStart(anchor, _) => (0, *anchor, Style::Collection, Some(false)),
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(frame) = stack.pop() else { continue };
                let (size, anchor) = match frame {
                    Frame::Map { anchor, size, .. } | Frame::Seq { anchor, size, .. } => {
                        (size + 1, anchor)
                    }
                    Frame::ComplexKey { depth, size } => {
                        if depth > 0 {
                            stack.push(Frame::ComplexKey {
                                depth: depth - 1,
                                size: size + 1,
                            });
                            continue;
                        }
                        (size + 1, 0)
                    }
                };
                if anchor > 0 {
                    anchor_sizes.insert(anchor, size);
                }
                add_size(&mut stack, size);
                continue;
            }
            Event::DocumentEnd | Event::StreamStart | Event::Nothing => continue,
        };
        expanded = expanded.saturating_add(node_size.max(1));
        if expanded > MAX_EXPANDED_NODES {
            return Err(SpanError {
                pos,
                message: format!(
                    "aliases here expand the document past {MAX_EXPANDED_NODES} values (a YAML alias bomb?)"
                ),
                help: Some("write the values out, or use fewer nested aliases".into()),
            });
        }
        if stack.len() >= MAX_DEPTH {
            return Err(too_deep(pos));
        }

        // Where does this node go?
        let mut path: Option<KeyPath> = None;
        let mut key_pos = None;
        let mut becomes_complex_key = false;
        match stack.last_mut() {
            None => {
                root_seen = true;
                path = Some(KeyPath::root());
            }
            Some(Frame::ComplexKey { depth, .. }) => {
                if opens.is_some() {
                    *depth += 1;
                }
            }
            Some(Frame::Map { path: p, key, .. }) => match key.take() {
                None => {
                    // This node is a key. A block mapping's start event is marked at its first
                    // key's colon: place the mapping at its first key instead.
                    if let Some(span) = idx.spans.get_mut(p) {
                        if (pos.line, pos.column) < (span.value.line, span.value.column) {
                            span.value = pos;
                        }
                    }
                    if let Event::Scalar(v, ..) = &ev {
                        *key = Some((scalar_key(v), pos));
                    } else {
                        *key = Some(("?".into(), pos));
                        if opens.is_some() {
                            becomes_complex_key = true;
                        }
                    }
                }
                Some((k, kp)) => {
                    path = Some(p.key(&k));
                    key_pos = Some(kp);
                }
            },
            Some(Frame::Seq { path: p, next, .. }) => {
                path = Some(p.index(*next));
                *next += 1;
            }
        }
        if let Some(p) = &path {
            idx.spans.insert(
                p.clone(),
                Span {
                    key: key_pos,
                    value: pos,
                    style,
                },
            );
        }
        match opens {
            Some(is_map) if becomes_complex_key => {
                let _ = is_map;
                stack.push(Frame::ComplexKey { depth: 0, size: 0 });
            }
            Some(is_map) => {
                let p = path.unwrap_or_default();
                stack.push(if is_map {
                    Frame::Map {
                        path: p,
                        key: None,
                        anchor,
                        size: 0,
                    }
                } else {
                    Frame::Seq {
                        path: p,
                        next: 0,
                        anchor,
                        size: 0,
                    }
                });
            }
            None => {
                if anchor > 0 {
                    anchor_sizes.insert(anchor, node_size);
                }
                add_size(&mut stack, node_size);
            }
        }
    }
    if !root_seen || (root_null_at.is_some() && idx.spans.len() == 1) {
        return Err(SpanError {
            pos: root_null_at.unwrap_or(Pos { line: 1, column: 1 }),
            message: "the file is empty: there is no scenario in it".into(),
            help: Some(
                "a scenario is a mapping with at least `name`, `journeys` and `load`; copy one from scenarios/"
                    .into(),
            ),
        });
    }
    Ok(idx)
}

fn too_deep(pos: Pos) -> SpanError {
    SpanError {
        pos,
        message: format!("the document is nested more than {MAX_DEPTH} levels deep"),
        help: Some("a scenario needs about ten levels; flatten this value".into()),
    }
}

fn add_size(stack: &mut [Frame], n: u64) {
    match stack.last_mut() {
        Some(Frame::Map { size, .. })
        | Some(Frame::Seq { size, .. })
        | Some(Frame::ComplexKey { size, .. }) => *size = size.saturating_add(n),
        None => {}
    }
}

fn is_null(v: &str) -> bool {
    matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

fn syntax_message(info: &str) -> String {
    format!("this is not valid YAML: {info}")
}

/// The first line (1-based) whose indentation, up to `upto_line`, contains a tab, and the column
/// of that tab. YAML forbids tabs in indentation; parsers report them confusingly.
pub fn tab_in_indentation(text: &str, upto_line: usize) -> Option<Pos> {
    for (i, line) in text.lines().enumerate().take(upto_line.max(1)) {
        let indent: &str = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
        let rest = &line[indent.len()..];
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if let Some(c) = indent.find('\t') {
            return Some(Pos {
                line: i + 1,
                column: indent[..c].chars().count() + 1,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(idx: &SpanIndex, p: &str) -> (Option<(usize, usize)>, (usize, usize)) {
        let s = idx
            .get(&KeyPath::parse(p))
            .unwrap_or_else(|| panic!("no span for {p}"));
        (
            s.key.map(|k| (k.line, k.column)),
            (s.value.line, s.value.column),
        )
    }

    #[test]
    fn keys_and_values_of_nested_block_mappings_are_located() {
        let text = "name: x\nload:\n  stages:\n    - rate: 50/s\n      for: 30s\n    - { to: 9/s, over: 1m }\n";
        let idx = index(text).unwrap();
        assert_eq!(at(&idx, "name"), (Some((1, 1)), (1, 7)));
        assert_eq!(at(&idx, "load.stages[0].for"), (Some((5, 7)), (5, 12)));
        assert_eq!(at(&idx, "load.stages[0].rate"), (Some((4, 7)), (4, 13)));
        assert_eq!(at(&idx, "load.stages[1].over"), (Some((6, 18)), (6, 24)));
        assert_eq!(at(&idx, "load.stages[1]").1, (6, 7));
    }

    #[test]
    fn block_mappings_are_placed_at_their_first_key() {
        let idx = index("# c\nname: x\nload:\n  seed: 1\n").unwrap();
        let root = idx.get(&KeyPath::root()).unwrap();
        assert_eq!((root.value.line, root.value.column), (2, 1));
        assert_eq!(at(&idx, "load"), (Some((3, 1)), (4, 3)));
    }

    #[test]
    fn quoted_values_point_at_the_quote() {
        let idx = index("a: \"x y\"\nb: 'z'\n").unwrap();
        let a = idx.get(&KeyPath::parse("a")).unwrap();
        assert_eq!((a.value.column, a.style), (4, Style::DoubleQuoted));
        assert_eq!(
            idx.get(&KeyPath::parse("b")).unwrap().style,
            Style::SingleQuoted
        );
    }

    #[test]
    fn nearest_falls_back_to_the_longest_written_prefix() {
        let idx = index("base: &b { x: 1 }\nuse: *b\n").unwrap();
        let (span, exact) = idx.nearest(&KeyPath::parse("use.x")).unwrap();
        assert!(!exact);
        assert_eq!((span.value.line, span.value.column), (2, 6));
        assert_eq!(span.style, Style::Alias);
    }

    #[test]
    fn alias_bomb_is_refused_without_expanding() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text += &format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            );
        }
        let start = std::time::Instant::now();
        let err = index(&text).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
        assert_eq!(err.pos.line, 6, "10^5 values are reached on line 6");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn serde_yaml_repetition_limit_also_stops_an_alias_bomb() {
        // The second line of defence: serde_yaml stops after 100 alias jumps per event.
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text += &format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{prev}"); 10].join(", ")
            );
        }
        let start = std::time::Instant::now();
        let err = serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap_err();
        assert!(
            err.to_string().contains("repetition limit exceeded"),
            "{err}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_few_aliases_are_fine() {
        let idx = index("h: &h { A: b }\nx: *h\ny: *h\n").unwrap();
        assert!(idx.get(&KeyPath::parse("y")).is_some());
    }

    #[test]
    fn second_document_is_refused_at_its_marker() {
        let err = index("name: a\n---\nname: b\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.column), (2, 1));
        assert!(err.message.contains("more than one YAML document"));
    }

    #[test]
    fn empty_and_comment_only_files_are_empty() {
        for text in ["", "\n\n", "# just a comment\n", "---\n", "~\n"] {
            let err = index(text).unwrap_err();
            assert!(err.message.contains("empty"), "{text:?}: {}", err.message);
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        let err = index(&text).unwrap_err();
        assert!(
            err.message.contains("nested more than 64"),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = index("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.contains("not valid YAML"));
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn tabs_in_indentation_are_found() {
        let text = "a:\n  b: 1\n\tc: 2\n";
        assert_eq!(
            tab_in_indentation(text, 10),
            Some(Pos { line: 3, column: 1 })
        );
        assert_eq!(tab_in_indentation("a: \"x\ty\"\n", 10), None);
    }

    #[test]
    fn key_paths_parse_and_display() {
        let p = KeyPath::parse("load.stages[0].for");
        assert_eq!(
            p.0,
            vec![
                Seg::Key("load".into()),
                Seg::Key("stages".into()),
                Seg::Index(0),
                Seg::Key("for".into())
            ]
        );
        assert_eq!(p.to_string(), "load.stages[0].for");
    }
}
