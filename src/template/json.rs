//! JSON bodies whose string leaves are templates (`json: { sku: "{{ skus.id }}", qty: 1 }`).
//!
//! All structure and literal leaves are serialized once, at compile time, into byte chunks; only
//! the template holes are rendered per request, escaped as JSON string contents between quotes
//! that are already in the chunks. Object keys are literal: a `{{` in a key is an error rather
//! than text sent as it is.

use super::render::{push_escaped, Bound, Escape, Scope, Values};
use super::{Template, TemplateError};
use serde_yaml::Value;

/// A compiled JSON body: `chunks[0] hole[0] chunks[1] hole[1] … chunks[n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonBody {
    chunks: Vec<Vec<u8>>,
    holes: Vec<Hole>,
}

#[derive(Debug, Clone, PartialEq)]
struct Hole {
    /// Where the leaf is, like `$.items[0].sku`, for error messages.
    path: String,
    template: Template,
}

/// A JSON body bound to a scope, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundJson {
    chunks: Vec<Box<[u8]>>,
    holes: Vec<Bound>,
}

fn err(offset: usize, path: &str, message: impl std::fmt::Display) -> TemplateError {
    TemplateError {
        offset,
        message: format!("in the JSON body at `{path}`: {message}"),
    }
}

impl JsonBody {
    /// Compiles a YAML value into a JSON body. Errors: a template error in a string leaf (its
    /// offset is within that string), a non-string or templated key, a YAML tag, NaN or infinity.
    pub fn compile(value: &Value) -> Result<JsonBody, TemplateError> {
        let mut body = JsonBody {
            chunks: vec![Vec::new()],
            holes: Vec::new(),
        };
        let mut path = String::from("$");
        body.write(value, &mut path)?;
        Ok(body)
    }

    /// The templates of the string leaves, in document order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.holes.iter().map(|h| &h.template)
    }

    /// The serialized body, when it has no template leaves.
    pub fn literal(&self) -> Option<&[u8]> {
        match self.chunks.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    pub fn bind(&self, scope: &dyn Scope) -> Result<BoundJson, String> {
        let holes = self
            .holes
            .iter()
            .map(|h| {
                h.template
                    .bind(scope)
                    .map_err(|e| format!("in the JSON body at `{}`: {e}", h.path))
            })
            .collect::<Result<_, _>>()?;
        Ok(BoundJson {
            chunks: self.chunks.iter().map(|c| c.as_slice().into()).collect(),
            holes,
        })
    }

    fn out(&mut self) -> &mut Vec<u8> {
        // `chunks` always holds one more element than `holes`, so it is never empty.
        let last = self.chunks.len() - 1;
        &mut self.chunks[last]
    }

    fn write(&mut self, value: &Value, path: &mut String) -> Result<(), TemplateError> {
        match value {
            Value::Null => self.out().extend_from_slice(b"null"),
            Value::Bool(b) => self
                .out()
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Number(n) => {
                let text = if let Some(i) = n.as_i64() {
                    itoa::Buffer::new().format(i).to_string()
                } else if let Some(u) = n.as_u64() {
                    itoa::Buffer::new().format(u).to_string()
                } else {
                    match n.as_f64().and_then(serde_json::Number::from_f64) {
                        Some(f) => f.to_string(),
                        None => {
                            return Err(err(
                                0,
                                path,
                                format!("`{n}` has no JSON form (JSON has no NaN or infinity)"),
                            ))
                        }
                    }
                };
                self.out().extend_from_slice(text.as_bytes());
            }
            Value::String(s) => {
                let template = Template::compile(s).map_err(|e| err(e.offset, path, e.message))?;
                self.out().push(b'"');
                match template.literal() {
                    Some(text) => push_escaped(self.out(), text.as_bytes(), Escape::Json),
                    None => {
                        self.holes.push(Hole {
                            path: path.clone(),
                            template,
                        });
                        self.chunks.push(Vec::new());
                    }
                }
                self.out().push(b'"');
            }
            Value::Sequence(items) => {
                self.out().push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out().push(b',');
                    }
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.write(item, path)?;
                    path.truncate(len);
                }
                self.out().push(b']');
            }
            Value::Mapping(map) => {
                self.out().push(b'{');
                for (i, (key, item)) in map.iter().enumerate() {
                    let Value::String(key) = key else {
                        return Err(err(
                            0,
                            path,
                            format!(
                                "JSON object keys must be strings, got {}: quote it",
                                describe_key(key)
                            ),
                        ));
                    };
                    if key.contains("{{") {
                        return Err(err(
                            0,
                            path,
                            format!("the key `{key}` holds `{{{{`: templates are allowed in values, not in keys"),
                        ));
                    }
                    if i > 0 {
                        self.out().push(b',');
                    }
                    self.out().push(b'"');
                    push_escaped(self.out(), key.as_bytes(), Escape::Json);
                    self.out().extend_from_slice(b"\":");
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    self.write(item, path)?;
                    path.truncate(len);
                }
                self.out().push(b'}');
            }
            Value::Tagged(tagged) => {
                return Err(err(
                    0,
                    path,
                    format!("the YAML tag `{}` has no JSON form: remove it", tagged.tag),
                ))
            }
        }
        Ok(())
    }
}

fn describe_key(key: &Value) -> String {
    match key {
        Value::Null => "an empty key (null)".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
        Value::String(s) => format!("`{s}`"),
    }
}

impl BoundJson {
    /// Does any of its values read the wall clock (`now_ms()`)?
    pub fn reads_clock(&self) -> bool {
        self.holes.iter().any(Bound::reads_clock)
    }

    /// Appends the JSON body to `out`; template values are escaped as JSON string contents.
    pub fn render(&self, values: &mut dyn Values, out: &mut Vec<u8>) {
        let mut chunks = self.chunks.iter();
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        for (hole, chunk) in self.holes.iter().zip(chunks) {
            hole.render(values, Escape::Json, out);
            out.extend_from_slice(chunk);
        }
    }

    /// The body, when it has no template leaves.
    pub fn literal(&self) -> Option<&[u8]> {
        match self.chunks.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::render::tests::{TestScope, TestValues};
    use super::*;
    use serde_json::json;

    fn yaml(src: &str) -> Value {
        serde_yaml::from_str(src).unwrap()
    }

    fn render(src: &str, values: &mut TestValues) -> serde_json::Value {
        let body = JsonBody::compile(&yaml(src)).unwrap();
        let bound = body.bind(&TestScope).unwrap();
        let mut out = Vec::new();
        bound.render(values, &mut out);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    fn compile_err(src: &str) -> TemplateError {
        JsonBody::compile(&yaml(src)).unwrap_err()
    }

    #[test]
    fn template_leaves_render_inside_valid_json() {
        let mut values = TestValues::new();
        values.vars[1] = "say \"hi\"\\\n\u{1}é💥".into();
        let got = render(
            r##"{ sku: "{{ skus.id }}", qty: 1, big: 18446744073709551615, neg: -3, price: 9.5,
                 ok: true, none: null, tags: [a, "{{ note }}", "#{{ seq() }}"],
                 nested: { user: "u-{{ users.id }}", "we\"ird": "x\ty" } }"##,
            &mut values,
        );
        assert_eq!(
            got,
            json!({
                "sku": "sku-42", "qty": 1, "big": 18446744073709551615u64, "neg": -3, "price": 9.5,
                "ok": true, "none": null, "tags": ["a", "say \"hi\"\\\n\u{1}é💥", "#1"],
                "nested": { "user": "u-u-7", "we\"ird": "x\ty" }
            })
        );
    }

    #[test]
    fn a_body_without_templates_is_one_literal_chunk() {
        let body = JsonBody::compile(&yaml("{ a: [1, 2.5, \"x}}\"], b: {} }")).unwrap();
        assert_eq!(body.literal(), Some(&br#"{"a":[1,2.5,"x}}"],"b":{}}"#[..]));
        assert_eq!(body.templates().count(), 0);
        let bound = body.bind(&TestScope).unwrap();
        assert_eq!(bound.literal(), body.literal());
    }

    #[test]
    fn templates_are_listed_in_document_order() {
        let body =
            JsonBody::compile(&yaml("{ a: '{{ cart_id }}', b: ['{{ users.id }}'] }")).unwrap();
        let listed: Vec<String> = body
            .templates()
            .flat_map(|t| t.exprs().map(|e| e.to_string()))
            .collect();
        assert_eq!(listed, ["cart_id", "users.id"]);
        assert_eq!(body.literal(), None);
    }

    #[test]
    fn a_template_error_names_the_leaf_and_keeps_its_offset() {
        let e = compile_err("{ items: [ok, 'id={{ uuid4() }}'] }");
        assert_eq!(e.offset, 6);
        assert_eq!(
            e.message,
            "in the JSON body at `$.items[1]`: `uuid4` is not a function: did you mean `uuid`?"
        );
    }

    #[test]
    fn bind_errors_name_the_leaf() {
        let body = JsonBody::compile(&yaml("{ cart: { id: '{{ cart_idd }}' } }")).unwrap();
        let e = body.bind(&TestScope).unwrap_err();
        assert!(
            e.starts_with("in the JSON body at `$.cart.id`: `cart_idd`"),
            "{e}"
        );
    }

    #[test]
    fn keys_must_be_plain_strings() {
        let e = compile_err("{ 1: a }");
        assert_eq!(
            e.message,
            "in the JSON body at `$`: JSON object keys must be strings, got the number `1`: quote it"
        );
        assert!(compile_err("{ true: a }")
            .message
            .contains("the boolean `true`"));
        assert!(compile_err("{ '{{ cart_id }}': a }")
            .message
            .contains("templates are allowed in values, not in keys"));
    }

    #[test]
    fn tags_and_non_finite_numbers_have_no_json_form() {
        let e = compile_err("{ a: !secret x }");
        assert_eq!(
            e.message,
            "in the JSON body at `$.a`: the YAML tag `!secret` has no JSON form: remove it"
        );
        assert!(compile_err("[.nan]").message.contains("no NaN or infinity"));
        assert!(compile_err("{ x: -.inf }")
            .message
            .contains("no NaN or infinity"));
    }
}
