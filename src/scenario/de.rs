//! A serde `Deserializer` over a `serde_yaml::Value` tree that remembers the key path of the
//! value being read, so that every type error, unit error or unknown key can be placed at the
//! right line and column with the help of `spans`.
//!
//! It does no YAML parsing itself (serde_yaml builds the tree, with its alias repetition limit)
//! and knows nothing of the scenario schema beyond what serde derive tells it through the
//! `unknown_field` / `unknown_variant` hooks, which it keeps so that a did-you-mean can be added.

use super::spans::{KeyPath, Seg};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};
use serde_yaml::{Mapping, Value};
use std::fmt;

/// A deserialization error with the path of the value that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    /// The innermost value being read when the error happened.
    pub path: Option<KeyPath>,
    /// The error is about the key itself (an unknown key), not its value.
    pub on_key: bool,
    /// For unknown keys and variants: what was written and what serde expected.
    pub unknown: Option<(String, Vec<&'static str>)>,
}

impl DeError {
    fn at(mut self, path: &P<'_>, on_key: bool) -> Self {
        if self.path.is_none() {
            self.path = Some(path.key_path());
            self.on_key = on_key;
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn list(expected: &[&str]) -> String {
    expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rewrites serde's type names ("struct Scenario", "u64") into words a scenario author uses.
fn expected_words(exp: &str) -> String {
    if exp.starts_with("struct ") || exp == "a map" || exp.starts_with("map") {
        return "a mapping (`key: value` lines)".into();
    }
    match exp {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" => "a string".into(),
        "a sequence" => "a list".into(),
        other => other.to_string(),
    }
}

fn unexpected_words(u: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match u {
        U::Bool(b) => format!("`{b}`"),
        U::Unsigned(n) => format!("the number {n}"),
        U::Signed(n) => format!("the number {n}"),
        U::Float(n) => format!("the number {n}"),
        U::Str(s) => format!("the string `{s}`"),
        U::Unit => "nothing".into(),
        U::Seq => "a list".into(),
        U::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            path: None,
            on_key: false,
            unknown: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected_words(&exp.to_string()),
            unexpected_words(&unexp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected_words(&exp.to_string()),
            unexpected_words(&unexp)
        ))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("expected {exp}, found {len} items"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!("unknown key `{field}`"));
        e.unknown = Some((field.to_string(), expected.to_vec()));
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!(
            "unknown value `{variant}`: expected one of {}",
            list(expected)
        ));
        e.unknown = Some((variant.to_string(), expected.to_vec()));
        e
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format_args!("the key `{field}` is given twice"))
    }
}

/// A borrowed key path (a linked list up the stack, like the one serde_yaml keeps).
#[derive(Clone, Copy)]
enum P<'a> {
    Root,
    Key(&'a P<'a>, &'a str),
    Index(&'a P<'a>, usize),
}

impl P<'_> {
    fn key_path(&self) -> KeyPath {
        let mut segs = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                P::Root => break,
                P::Key(parent, k) => {
                    segs.push(Seg::Key(k.to_string()));
                    cur = parent;
                }
                P::Index(parent, i) => {
                    segs.push(Seg::Index(*i));
                    cur = parent;
                }
            }
        }
        segs.reverse();
        KeyPath(segs)
    }
}

/// Reads a `T` from `value`, reporting errors with the path of the offending value.
pub fn from_value<'de, T: de::Deserialize<'de>>(value: &'de Value) -> Result<T, DeError> {
    T::deserialize(De {
        v: value,
        path: P::Root,
    })
}

/// The text of a scalar key (`200:` reads as "200").
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => "?".into(),
    }
}

struct De<'a, 'p> {
    v: &'a Value,
    path: P<'p>,
}

impl De<'_, '_> {
    fn fail(&self, e: DeError) -> DeError {
        e.at(&self.path, false)
    }

    fn type_error(&self, exp: &dyn de::Expected) -> DeError {
        use de::Error as _;
        let un = match self.v {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => de::Unexpected::Unsigned(u),
                (_, Some(i), _) => de::Unexpected::Signed(i),
                (_, _, Some(f)) => de::Unexpected::Float(f),
                _ => de::Unexpected::Other("a number"),
            },
            Value::String(s) => de::Unexpected::Str(s),
            Value::Sequence(_) => de::Unexpected::Seq,
            Value::Mapping(_) => de::Unexpected::Map,
            Value::Tagged(_) => de::Unexpected::Other("a tagged value"),
        };
        self.fail(DeError::invalid_type(un, exp))
    }
}

struct Exp(&'static str);
impl de::Expected for Exp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

macro_rules! forward_to_any {
    ($($m:ident)*) => {
        $(fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.deserialize_any(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for De<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.v {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Sequence(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Value::Mapping(m) => visitor.visit_map(Map::new(m, &self.path)),
            Value::Tagged(t) => Err(DeError::custom(format!(
                "YAML tags like `{}` are not used in scenarios; remove it",
                t.tag
            ))),
        };
        r.map_err(|e| self.fail(e))
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    /// Numbers and booleans read as strings where a string is wanted (`X-Version: 2`).
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.v {
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            _ => return self.deserialize_any(visitor),
        };
        r.map_err(|e| self.fail(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.v {
            Value::Null => visitor.visit_none().map_err(|e| self.fail(e)),
            _ => {
                let path = self.path;
                visitor
                    .visit_some(self)
                    .map_err(|e: DeError| e.at(&path, false))
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.v {
            Value::Null => visitor.visit_unit().map_err(|e| self.fail(e)),
            _ => Err(self.type_error(&Exp("nothing"))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let path = self.path;
        visitor
            .visit_newtype_struct(self)
            .map_err(|e: DeError| e.at(&path, false))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.v {
            Value::Sequence(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(&Exp("a list"))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.v {
            Value::Mapping(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error(&Exp("a mapping (`key: value` lines)"))),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match self.v {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            // `{ variant: value }`, the externally tagged form serde_yaml 0.9 only reads as a tag.
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                visitor.visit_enum(Enum {
                    key: key_text(k),
                    value: v,
                    path: &self.path,
                })
            }
            _ => {
                return Err(self.fail(DeError::custom(format!(
                    "expected one of {}, found {}",
                    list(variants),
                    super::units::describe(self.v)
                ))))
            }
        };
        r.map_err(|e| self.fail(e))
    }
}

struct Seq<'a, 'p> {
    items: std::slice::Iter<'a, Value>,
    index: usize,
    path: &'p P<'p>,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(v) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        let path = P::Index(self.path, i);
        seed.deserialize(De { v, path })
            .map(Some)
            .map_err(|e| e.at(&path, false))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a, 'p> {
    entries: serde_yaml::mapping::Iter<'a>,
    value: Option<(String, &'a Value)>,
    path: &'p P<'p>,
}

impl<'a, 'p> Map<'a, 'p> {
    fn new(m: &'a Mapping, path: &'p P<'p>) -> Self {
        Map {
            entries: m.iter(),
            value: None,
            path,
        }
    }
}

impl<'de> MapAccess<'de> for Map<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        let key = key_text(k);
        let path = P::Key(self.path, &key);
        let r = seed
            .deserialize(KeyDe(key.clone()))
            .map_err(|e| e.at(&path, true));
        self.value = Some((key.clone(), v));
        r.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, v) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value read before its key"))?;
        let path = P::Key(self.path, &key);
        seed.deserialize(De { v, path })
            .map_err(|e| e.at(&path, false))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A mapping key: always read as a string.
struct KeyDe(String);

impl<'de> Deserializer<'de> for KeyDe {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Enum<'a, 'p> {
    key: String,
    value: &'a Value,
    path: &'p P<'p>,
}

impl<'de, 'p> EnumAccess<'de> for Enum<'de, 'p> {
    type Error = DeError;
    type Variant = Variant<'de, 'p>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let path = P::Key(self.path, &self.key);
        let v = seed
            .deserialize(KeyDe(self.key.clone()))
            .map_err(|e| e.at(&path, true))?;
        Ok((
            v,
            Variant {
                key: self.key,
                value: self.value,
                path: self.path,
            },
        ))
    }
}

struct Variant<'a, 'p> {
    key: String,
    value: &'a Value,
    path: &'p P<'p>,
}

impl<'de> VariantAccess<'de> for Variant<'de, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(<DeError as de::Error>::custom(format!(
                "`{}` takes no value",
                self.key
            ))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let path = P::Key(self.path, &self.key);
        seed.deserialize(De {
            v: self.value,
            path,
        })
        .map_err(|e| e.at(&path, false))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let path = P::Key(self.path, &self.key);
        De {
            v: self.value,
            path,
        }
        .deserialize_seq(visitor)
        .map_err(|e| e.at(&path, false))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let path = P::Key(self.path, &self.key);
        De {
            v: self.value,
            path,
        }
        .deserialize_map(visitor)
        .map_err(|e| e.at(&path, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u64,
        #[serde(default)]
        s: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        list: Vec<Inner>,
    }

    fn err(text: &str) -> DeError {
        let v: Value = serde_yaml::from_str(text).unwrap();
        from_value::<Outer>(&v).unwrap_err()
    }

    #[test]
    fn type_errors_carry_the_value_path() {
        let e = err("list:\n  - n: 1\n  - n: many\n");
        assert_eq!(e.path.unwrap().to_string(), "list[1].n");
        assert!(!e.on_key);
        assert_eq!(
            e.message,
            "expected a whole number, found the string `many`"
        );
    }

    #[test]
    fn unknown_keys_carry_the_key_path_and_the_expected_keys() {
        let e = err("list:\n  - n: 1\n    ss: x\n");
        assert_eq!(e.path.unwrap().to_string(), "list[0].ss");
        assert!(e.on_key);
        assert_eq!(e.unknown, Some(("ss".into(), vec!["n", "s"])));
    }

    #[test]
    fn missing_keys_are_placed_at_their_mapping() {
        let e = err("list:\n  - s: x\n");
        assert_eq!(e.path.unwrap().to_string(), "list[0]");
        assert_eq!(e.message, "missing key `n`");
    }

    #[test]
    fn numbers_read_as_strings_where_strings_are_wanted() {
        let v: Value = serde_yaml::from_str("list: [{n: 1, s: 2}]").unwrap();
        let o: Outer = from_value(&v).unwrap();
        assert_eq!(o.list[0].s.as_deref(), Some("2"));
    }
}
