//! The generic spanned-document layer under scenario files: a small value tree (TOML with byte
//! spans, or JSON), read field by field with every problem collected, and "did you mean" hints.
//! Nothing here knows what a scenario is; `super` maps the tree onto the domain.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::ops::Range;

/// 1-based line and character column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

// ---------------------------------------------------------------------------------------------
// The value tree both formats are read into.

pub(super) type Span = Option<Range<usize>>;

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) span: Span,
    pub(super) kind: Kind,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) key_span: Span,
    pub(super) value: Node,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Table(Vec<Entry>),
    Array(Vec<Node>),
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    Null,
}

impl Kind {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Kind::Table(_) => "a table",
            Kind::Array(_) => "an array",
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// A TOML value with its byte span (toml's `Spanned` hook).
struct TomlNode(Node);

impl<'de> Deserialize<'de> for TomlNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = toml::Spanned::<Kind>::deserialize(d)?;
        let span = s.span();
        Ok(TomlNode(Node {
            span: Some(span),
            kind: s.into_inner(),
        }))
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> serde::de::Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut out = Vec::new();
        while let Some(TomlNode(n)) = seq.next_element()? {
            out.push(n);
        }
        Ok(Kind::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<toml::Spanned<String>>()? {
            let TomlNode(value) = map.next_value()?;
            let key_span = Some(key.span());
            out.push(Entry {
                key: key.into_inner(),
                key_span,
                value,
            });
        }
        Ok(Kind::Table(out))
    }
}

impl Node {
    pub(super) fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as V;
        let kind = match v {
            V::Null => Kind::Null,
            V::Bool(b) => Kind::Bool(*b),
            V::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Kind::Int(u.into()),
                (_, Some(i), _) => Kind::Int(i.into()),
                (_, _, Some(f)) => Kind::Float(f),
                _ => Kind::Null,
            },
            V::String(s) => Kind::Str(s.clone()),
            V::Array(a) => Kind::Array(a.iter().map(Node::from_json).collect()),
            V::Object(o) => Kind::Table(
                o.iter()
                    .map(|(k, v)| Entry {
                        key: k.clone(),
                        key_span: None,
                        value: Node::from_json(v),
                    })
                    .collect(),
            ),
        };
        Node { span: None, kind }
    }

    /// The JSON value serde needs to read `Settings`; `None` for values JSON cannot hold (NaN).
    pub(super) fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value as V;
        Some(match &self.kind {
            Kind::Null => V::Null,
            Kind::Bool(b) => V::Bool(*b),
            Kind::Int(i) => match (u64::try_from(*i), i64::try_from(*i)) {
                (Ok(u), _) => V::from(u),
                (_, Ok(s)) => V::from(s),
                _ => return None,
            },
            Kind::Float(f) => V::Number(serde_json::Number::from_f64(*f)?),
            Kind::Str(s) => V::String(s.clone()),
            Kind::Array(a) => V::Array(a.iter().map(Node::to_json).collect::<Option<_>>()?),
            Kind::Table(t) => V::Object(
                t.iter()
                    .map(|e| Some((e.key.clone(), e.value.to_json()?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// The span of the value at a dotted path below this node, or of the deepest part that exists.
    pub(super) fn span_of(&self, path: &str) -> Span {
        let mut node = self;
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            match &node.kind {
                Kind::Table(t) => match t.iter().find(|e| e.key == seg) {
                    Some(e) => node = &e.value,
                    None => break,
                },
                _ => break,
            }
        }
        node.span.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion with error collection.

#[derive(Debug, Default)]
pub(super) struct Cx {
    pub(super) errors: Vec<(Span, String)>,
}

impl Cx {
    pub(super) fn err(&mut self, span: &Span, msg: impl Into<String>) {
        self.errors.push((span.clone(), msg.into()));
    }

    pub(super) fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.err(
            &node.span,
            format!("{path}: expected {what}, found {}", node.kind.describe()),
        );
    }
}

/// A table being read field by field; unread fields are reported as unknown.
pub(super) struct Fields<'a> {
    path: String,
    entries: &'a [Entry],
    used: Vec<bool>,
}

impl<'a> Fields<'a> {
    pub(super) fn open(cx: &mut Cx, node: &'a Node, path: &str) -> Option<Fields<'a>> {
        match &node.kind {
            Kind::Table(t) => Some(Fields {
                path: path.to_string(),
                entries: t,
                used: vec![false; t.len()],
            }),
            _ => {
                cx.expected(node, path, "a table");
                None
            }
        }
    }

    pub(super) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key` (null counts as absent, as JSON writes absent options).
    pub(super) fn get(&mut self, key: &str) -> Option<&'a Node> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        if let Some(u) = self.used.get_mut(i) {
            *u = true;
        }
        let v = &self.entries.get(i)?.value;
        (!matches!(v.kind, Kind::Null)).then_some(v)
    }

    pub(super) fn finish(self, cx: &mut Cx, known: &[&str], context: &str) {
        for (e, used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let hint = match suggest(&e.key, known.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => format!("; expected one of: {}", known.join(", ")),
            };
            let span = e.key_span.clone().or_else(|| e.value.span.clone());
            cx.err(
                &span,
                format!(
                    "{}: unknown field `{}`{context}{hint}",
                    self.path(&e.key),
                    e.key
                ),
            );
        }
    }
}

/// The closest candidate to a misspelt word (case-insensitive, or at most 2 edits away).
pub(super) fn suggest<'k>(
    word: &str,
    candidates: impl Iterator<Item = &'k str>,
) -> Option<&'k str> {
    let w: Vec<char> = word.chars().take(64).flat_map(char::to_lowercase).collect();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let cv: Vec<char> = c.chars().take(64).flat_map(char::to_lowercase).collect();
        let d = edit_distance(&w, &cv);
        if d <= 2 && best.map_or(true, |(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

pub(super) fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub(super) fn string(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    match &node.kind {
        Kind::Str(s) => Some(s.clone()),
        _ => {
            cx.expected(node, path, "a string");
            None
        }
    }
}

pub(super) fn boolean(cx: &mut Cx, node: &Node, path: &str) -> Option<bool> {
    match node.kind {
        Kind::Bool(b) => Some(b),
        _ => {
            cx.expected(node, path, "true or false");
            None
        }
    }
}

pub(super) fn int<T: TryFrom<i128>>(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    range: &str,
) -> Option<T> {
    match node.kind {
        Kind::Int(i) => match T::try_from(i) {
            Ok(v) => Some(v),
            Err(_) => {
                cx.err(&node.span, format!("{path}: {i} is out of range ({range})"));
                None
            }
        },
        _ => {
            cx.expected(node, path, "an integer");
            None
        }
    }
}

pub(super) fn u64_(cx: &mut Cx, node: &Node, path: &str) -> Option<u64> {
    int(cx, node, path, "0 to 18446744073709551615")
}

pub(super) fn u32_(cx: &mut Cx, node: &Node, path: &str) -> Option<u32> {
    int(cx, node, path, "0 to 4294967295")
}

pub(super) fn float(cx: &mut Cx, node: &Node, path: &str) -> Option<f64> {
    match node.kind {
        Kind::Float(f) => Some(f),
        // Integers are exact in f64 up to 2^53; larger ones are out of any sane range anyway.
        Kind::Int(i) => Some(i as f64),
        _ => {
            cx.expected(node, path, "a number");
            None
        }
    }
}

/// Reads a string naming one of `names` (exact), suggesting the closest on failure.
pub(super) fn name_of<T: Copy>(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    what: &str,
    table: &[(&'static str, T)],
) -> Option<T> {
    let s = string(cx, node, path)?;
    if let Some((_, v)) = table.iter().find(|(n, _)| *n == s) {
        return Some(*v);
    }
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    let hint = match suggest(&s, names.iter().copied()) {
        Some(n) => format!("did you mean {n:?}?"),
        None => format!("expected one of: {}", names.join(", ")),
    };
    cx.err(&node.span, format!("{path}: unknown {what} {s:?}; {hint}"));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("é", 1), (1, 1));
        assert_eq!(line_col("", 99), (1, 1));
    }
}
