//! Reading one migration file: TOML with spans in, a checked definition or errors with lines out.
//!
//! The TOML is walked by hand over `toml::de::DeTable` (which keeps the span of every key and
//! value) rather than through serde, so that every error, including an unknown key or a value
//! of the wrong type, points at the line it is on.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{canonical, DeclarativeMigration, LoadError, Op, OpKind, ENGINE_OWNED};
use crate::manifest::{pointer_tokens, Document, Json};
use crate::schema::Version;

/// The pointers an op may not change, split into tokens.
pub(super) struct Guards {
    engine: Vec<(String, Vec<String>)>,
    protected: Vec<(String, Vec<String>)>,
}

impl Guards {
    pub(super) fn new(protected: &[String]) -> Guards {
        let split = |p: &str| pointer_tokens(p).map(|t| (p.to_string(), t));
        Guards {
            engine: ENGINE_OWNED.iter().filter_map(|p| split(p)).collect(),
            // An invalid pointer in the configuration guards nothing; the config loader reports it.
            protected: protected.iter().filter_map(|p| split(p)).collect(),
        }
    }
}

/// Whether one token path is a prefix of the other (equal, above or below).
fn related(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Whether `inner` lies strictly inside `outer`.
fn strictly_inside(inner: &[String], outer: &[String]) -> bool {
    inner.len() > outer.len() && inner[..outer.len()] == *outer
}

struct FileCtx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<LoadError>,
}

impl FileCtx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        1 + self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line(span.start);
        self.errors.push(LoadError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        });
    }
}

/// A string field with the span of its key (for messages) and of its value.
struct Field<T> {
    value: T,
    key: Range<usize>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The entries of a table in the order they appear in the file (the map itself is sorted by key).
fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(
    &'t Spanned<std::borrow::Cow<'i, str>>,
    &'t Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

fn string_field(
    cx: &mut FileCtx<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Option<Field<String>> {
    match value.get_ref() {
        DeValue::String(s) => Some(Field {
            value: s.to_string(),
            key: key.span(),
        }),
        other => {
            cx.error(
                key.span(),
                format!(
                    "`{}` must be a string, found {}: quote it",
                    key.get_ref(),
                    type_name(other)
                ),
            );
            None
        }
    }
}

fn version_field(cx: &mut FileCtx<'_>, field: &Field<String>, name: &str) -> Option<Version> {
    match field.value.parse::<Version>() {
        Ok(v) => Some(v),
        Err(e) => {
            cx.error(field.key.clone(), format!("`{name}`: {e}"));
            None
        }
    }
}

/// `FROM-TO.toml` when the file name has that shape.
fn versions_in_name(file: &str) -> Option<(Version, Version)> {
    let name = file.rsplit('/').next()?;
    let stem = name.strip_suffix(".toml")?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub(super) fn parse_file(
    file: &str,
    text: &str,
    guards: &Guards,
) -> Result<DeclarativeMigration, Vec<LoadError>> {
    let mut cx = FileCtx {
        file,
        text,
        errors: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            cx.error(
                span,
                format!(
                    "not valid TOML: {}; fix the TOML syntax",
                    e.message().trim_end()
                ),
            );
            return Err(cx.errors);
        }
    };
    let mut from = None;
    let mut to = None;
    let mut description = None;
    let mut ops_value = None;
    for (key, value) in in_file_order(root.get_ref()) {
        match key.get_ref().as_ref() {
            "from" => from = string_field(&mut cx, key, value),
            "to" => to = string_field(&mut cx, key, value),
            "description" => description = string_field(&mut cx, key, value),
            "ops" => ops_value = Some((key, value)),
            other => cx.error(
                key.span(),
                format!(
                    "unknown key `{other}`: a migration file has from, to, description and [[ops]]; remove it or fix its spelling"
                ),
            ),
        }
    }
    let from_v = match &from {
        Some(f) => version_field(&mut cx, f, "from"),
        None => {
            cx.error(
                0..0,
                "missing `from`: say which version this migration starts at, e.g. from = \"1.2.0\"",
            );
            None
        }
    };
    let to_v = match &to {
        Some(t) => version_field(&mut cx, t, "to"),
        None => {
            cx.error(
                0..0,
                "missing `to`: say which version this migration leads to, e.g. to = \"1.3.0\"",
            );
            None
        }
    };
    if let (Some(a), Some(b), Some(t)) = (from_v, to_v, &to) {
        if a >= b {
            cx.error(
                t.key.clone(),
                format!(
                    "`from` {a} is not below `to` {b}: a migration goes up; downgrades are rollbacks (use `artifact-migrate rollback`)"
                ),
            );
        }
        if let Some((na, nb)) = versions_in_name(file) {
            if (na, nb) != (a, b) {
                let key = from.as_ref().map(|f| f.key.clone()).unwrap_or(0..0);
                cx.error(
                    key,
                    format!(
                        "the file name says {na}->{nb} but the file says {a}->{b}: rename the file to {a}-{b}.toml or fix `from`/`to`"
                    ),
                );
            }
        }
    }
    let mut ops = Vec::new();
    if let Some((key, value)) = ops_value {
        match value.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(op) = parse_op(&mut cx, i + 1, item, guards) {
                        ops.push(op);
                    }
                }
            }
            other => cx.error(
                key.span(),
                format!(
                    "`ops` must be an array of tables ([[ops]] sections), found {}",
                    type_name(other)
                ),
            ),
        }
    }
    if let Some(d) = &description {
        if d.value.trim().is_empty() {
            cx.error(
                d.key.clone(),
                "`description` is empty: say what the migration does, or leave the key out",
            );
        }
    }
    let line = from.as_ref().map_or(1, |f| cx.line(f.key.start));
    match (from_v, to_v) {
        (Some(from), Some(to)) if cx.errors.is_empty() => {
            let mut m = DeclarativeMigration {
                file: file.to_string(),
                line,
                from,
                to,
                description: description.map(|d| d.value),
                ops,
                checksum: String::new(),
            };
            m.checksum = canonical::checksum(&m);
            Ok(m)
        }
        _ => Err(cx.errors),
    }
}

/// The raw fields of one op, each with its key's span.
#[derive(Default)]
struct RawOp {
    op: Option<Field<String>>,
    path: Option<Field<String>>,
    from: Option<Field<String>>,
    to: Option<Field<String>>,
    value: Option<Field<Json>>,
    description: Option<Field<String>>,
}

const OP_KEYS: &str = "op, path, from, to, value, value_json and description";

fn parse_op(
    cx: &mut FileCtx<'_>,
    n: usize,
    item: &Spanned<DeValue<'_>>,
    guards: &Guards,
) -> Option<Op> {
    let errors_before = cx.errors.len();
    let DeValue::Table(table) = item.get_ref() else {
        cx.error(
            item.span(),
            format!(
                "op {n} is {}, not a table: write each op as an [[ops]] section",
                type_name(item.get_ref())
            ),
        );
        return None;
    };
    let mut raw = RawOp::default();
    // Keys that are there at all: one whose value had the wrong type is reported once, as such.
    let present: Vec<String> = table.iter().map(|(k, _)| k.get_ref().to_string()).collect();
    let has = |key: &str| present.iter().any(|k| k == key);
    for (key, value) in in_file_order(table) {
        match key.get_ref().as_ref() {
            "op" => raw.op = string_field(cx, key, value),
            "path" => raw.path = string_field(cx, key, value),
            "from" => raw.from = string_field(cx, key, value),
            "to" => raw.to = string_field(cx, key, value),
            "description" => raw.description = string_field(cx, key, value),
            "value" | "value_json" => {
                if raw.value.is_some() {
                    cx.error(
                        key.span(),
                        format!("op {n} has both `value` and `value_json`: keep one"),
                    );
                    continue;
                }
                let converted = if key.get_ref() == "value" {
                    toml_to_json(value)
                } else {
                    json_text(value)
                };
                match converted {
                    Ok(v) => {
                        raw.value = Some(Field {
                            value: v,
                            key: key.span(),
                        })
                    }
                    Err((span, msg)) => cx.error(span, msg),
                }
            }
            other => cx.error(
                key.span(),
                format!(
                    "unknown key `{other}` in op {n}: an op has {OP_KEYS}; remove it or fix its spelling"
                ),
            ),
        }
    }
    let op_span = item.span();
    let Some(op_name) = raw.op.take() else {
        if has("op") {
            return None;
        }
        cx.error(
            op_span,
            format!("op {n} has no `op`: say which one, e.g. op = \"add\" (add, set, remove, rename, move or copy)"),
        );
        return None;
    };
    let description = match raw.description.take() {
        Some(d) if !d.value.trim().is_empty() => Some(d.value),
        Some(d) => {
            cx.error(
                d.key,
                format!("op {n} ({}) has an empty `description`: say what it does to a manifest, e.g. \"Add review_status (\\\"unreviewed\\\")\"", op_name.value),
            );
            None
        }
        None if has("description") => None,
        None => {
            cx.error(
                op_span.clone(),
                format!("op {n} ({}) has no `description`: say what it does to a manifest, e.g. description = \"Add review_status (\\\"unreviewed\\\")\"", op_name.value),
            );
            None
        }
    };
    let name = op_name.value.as_str();
    let (needs_path, needs_from, needs_to, needs_value) = match name {
        "add" | "set" => (true, false, false, true),
        "remove" => (true, false, false, false),
        "rename" => (true, false, true, false),
        "move" | "copy" => (true, true, false, false),
        other => {
            cx.error(
                op_name.key,
                format!("unknown op `{other}`: expected add, set, remove, rename, move or copy"),
            );
            return None;
        }
    };
    // Keys the op does not take, and keys it needs.
    let spans = [
        ("path", raw.path.as_ref().map(|f| f.key.clone()), needs_path),
        ("from", raw.from.as_ref().map(|f| f.key.clone()), needs_from),
        ("to", raw.to.as_ref().map(|f| f.key.clone()), needs_to),
        (
            "value",
            raw.value.as_ref().map(|f| f.key.clone()),
            needs_value,
        ),
    ];
    for (key, span, needed) in spans {
        match (span, needed) {
            (Some(span), false) => cx.error(
                span,
                format!(
                    "op `{name}` does not take `{key}`: remove it ({})",
                    usage(name)
                ),
            ),
            (None, true) if !(has(key) || key == "value" && has("value_json")) => cx.error(
                op_span.clone(),
                format!("op {n} (`{name}`) needs `{key}`: {}", usage(name)),
            ),
            _ => {}
        }
    }
    let path = raw.path.as_ref().and_then(|f| check_pointer(cx, f, "path"));
    let from = raw.from.as_ref().and_then(|f| check_pointer(cx, f, "from"));
    if cx.errors.len() > errors_before {
        return None;
    }
    let description = description?;
    let path = path?;
    let kind = match name {
        "add" => OpKind::Add {
            path: path.0,
            value: raw.value.take()?.value,
        },
        "set" => OpKind::Set {
            path: path.0,
            value: raw.value.take()?.value,
        },
        "remove" => OpKind::Remove { path: path.0 },
        "rename" => {
            let to = raw.to.as_ref()?;
            let last = path.1.last().cloned().unwrap_or_default();
            if to.value.is_empty() {
                cx.error(
                    to.key.clone(),
                    "rename `to` is empty: give the new key (a key, not a pointer), e.g. to = \"model_name\"",
                );
            } else if to.value == last {
                cx.error(
                    to.key.clone(),
                    format!("rename `to` is the key's own name {last:?}: give the new key"),
                );
            }
            OpKind::Rename {
                path: path.0,
                to: to.value.clone(),
            }
        }
        _ => {
            let from = from?;
            if related(&from.1, &path.1) {
                let key = raw.from.as_ref().map(|f| f.key.clone()).unwrap_or(op_span);
                cx.error(
                    key,
                    format!(
                        "{name} from {} to {}: one lies inside the other (or they are the same); choose a destination outside the source",
                        from.0, path.0
                    ),
                );
            }
            if name == "move" {
                OpKind::Move {
                    from: from.0,
                    path: path.0,
                }
            } else {
                OpKind::Copy {
                    from: from.0,
                    path: path.0,
                }
            }
        }
    };
    let line = cx.line(item.span().start);
    let op = Op {
        kind,
        description,
        line,
    };
    check_guards(cx, &op, &raw, guards);
    if cx.errors.len() > errors_before {
        return None;
    }
    Some(op)
}

fn usage(name: &str) -> &'static str {
    match name {
        "add" => "add takes path and value (or value_json)",
        "set" => "set takes path and value (or value_json)",
        "remove" => "remove takes path",
        "rename" => "rename takes path and to (the new key in the same object)",
        "move" => "move takes from and path (the destination)",
        _ => "copy takes from and path (the destination)",
    }
}

/// A pointer field: `/`-rooted, valid escapes, not the root.
fn check_pointer(
    cx: &mut FileCtx<'_>,
    f: &Field<String>,
    name: &str,
) -> Option<(String, Vec<String>)> {
    match pointer_tokens(&f.value) {
        Some(tokens) if !tokens.is_empty() => Some((f.value.clone(), tokens)),
        Some(_) => {
            cx.error(
                f.key.clone(),
                format!(
                    "`{name}` is the whole document: point at a member, e.g. \"/review_status\""
                ),
            );
            None
        }
        None => {
            cx.error(
                f.key.clone(),
                format!(
                    "`{name}` {:?} is not a JSON pointer: write it as \"/parent/key\", with ~0 for '~' and ~1 for '/'",
                    f.value
                ),
            );
            None
        }
    }
}

/// One place an op writes: a member it creates, overwrites or takes away.
struct Target {
    pointer: String,
    tokens: Vec<String>,
    /// The key naming it in the file, for the line.
    span: Range<usize>,
    /// Whether the op writes there only where nothing is (add, copy, move/rename destinations).
    creates_only: bool,
    /// What the op does there, for the message.
    what: &'static str,
}

/// Refuses ops that could change an engine-owned or protected field (see the module docs).
fn check_guards(cx: &mut FileCtx<'_>, op: &Op, raw: &RawOp, guards: &Guards) {
    let key_of = |f: &Option<Field<String>>| f.as_ref().map(|f| f.key.clone());
    let path_key = key_of(&raw.path).unwrap_or(0..0);
    let from_key = key_of(&raw.from).unwrap_or(path_key.clone());
    let to_key = key_of(&raw.to).unwrap_or(path_key.clone());
    let target = |pointer: &str, span: &Range<usize>, creates_only, what| Target {
        pointer: pointer.to_string(),
        tokens: pointer_tokens(pointer).unwrap_or_default(),
        span: span.clone(),
        creates_only,
        what,
    };
    let targets = match &op.kind {
        OpKind::Add { path, .. } | OpKind::Copy { path, .. } => {
            vec![target(path, &path_key, true, "writes")]
        }
        OpKind::Set { path, .. } => vec![target(path, &path_key, false, "overwrites")],
        OpKind::Remove { path } => vec![target(path, &path_key, false, "removes")],
        OpKind::Rename { path, to } => {
            let mut dest = pointer_tokens(path).unwrap_or_default();
            dest.pop();
            dest.push(to.clone());
            let dest: String = dest
                .iter()
                .map(|t| format!("/{}", crate::manifest::escape_pointer_token(t)))
                .collect();
            vec![
                target(path, &path_key, false, "renames away"),
                target(&dest, &to_key, true, "writes"),
            ]
        }
        OpKind::Move { from, path } => vec![
            target(from, &from_key, false, "moves away"),
            target(path, &path_key, true, "writes"),
        ],
    };
    let name = op.kind.name();
    for t in targets {
        let Target {
            pointer: ptr,
            tokens: toks,
            span,
            creates_only,
            what,
        } = t;
        if let Some((owned, _)) = guards.engine.iter().find(|(_, g)| related(&toks, g)) {
            cx.error(
                span,
                format!(
                    "{name} {what} {ptr}, which touches {owned}: only the engine writes schema_version and migration_history; remove this op"
                ),
            );
            continue;
        }
        for (p, g) in &guards.protected {
            let refused = if creates_only {
                // Writing only where nothing is may create an absent protected field or an
                // object above one, never write inside one.
                strictly_inside(&toks, g)
            } else {
                related(&toks, g)
            };
            if refused {
                let place = if toks == *g {
                    "the protected field"
                } else if strictly_inside(&toks, g) {
                    "inside the protected field"
                } else {
                    "an object holding the protected field"
                };
                cx.error(
                    span.clone(),
                    format!(
                        "{name} {what} {ptr}, {place} {p}: protected fields are never changed or removed; remove this op, or take {p} out of protected_fields in .artifact-migrate.toml if it may really change"
                    ),
                );
                break;
            }
        }
    }
}

/// A TOML value as JSON (see the module docs for the mapping).
fn toml_to_json(v: &Spanned<DeValue<'_>>) -> Result<Json, (Range<usize>, String)> {
    let err = |msg: String| Err((v.span(), msg));
    match v.get_ref() {
        DeValue::String(s) => Ok(Json::str(s.to_string())),
        DeValue::Boolean(b) => Ok(Json::Bool(*b)),
        DeValue::Integer(i) => {
            let text = i.as_str().trim_start_matches('+');
            if i.radix() == 10 {
                if is_json_number(text) {
                    Ok(Json::Number(text.to_string()))
                } else {
                    err(format!(
                        "integer {i} has no JSON form: write it as a plain decimal"
                    ))
                }
            } else {
                match u64::from_str_radix(text, i.radix()) {
                    Ok(n) => Ok(Json::Number(n.to_string())),
                    Err(_) => err(format!(
                        "integer {i} does not fit in 64 bits: write it as a decimal in value_json"
                    )),
                }
            }
        }
        DeValue::Float(f) => {
            let text = f.as_str().trim_start_matches('+');
            if text.contains("inf") || text.contains("nan") {
                err(format!(
                    "{} has no JSON form (JSON has no infinity or NaN): use a number, a string or value_json = 'null'",
                    f.as_str()
                ))
            } else if is_json_number(text) {
                Ok(Json::Number(text.to_string()))
            } else {
                err(format!(
                    "float {} has no JSON form: write it in value_json",
                    f.as_str()
                ))
            }
        }
        DeValue::Datetime(d) => err(format!(
            "a TOML date-time ({d}) has no JSON form: write it as a string, e.g. \"{d}\""
        )),
        DeValue::Array(items) => items
            .iter()
            .map(toml_to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        DeValue::Table(t) => {
            let mut members = Vec::with_capacity(t.len());
            for (k, v) in t.iter() {
                members.push((k.get_ref().to_string(), toml_to_json(v)?));
            }
            // TOML tables have no order: written sorted, so the bytes follow from the checksum.
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Json::Object(members))
        }
    }
}

/// `value_json`: a string of strict JSON.
fn json_text(v: &Spanned<DeValue<'_>>) -> Result<Json, (Range<usize>, String)> {
    let DeValue::String(s) = v.get_ref() else {
        return Err((
            v.span(),
            format!(
                "`value_json` must be a string of JSON text, found {}: quote it, e.g. value_json = '{{\"a\": null}}'",
                type_name(v.get_ref())
            ),
        ));
    };
    match Document::parse(s.as_bytes()) {
        Ok(doc) => Ok(doc.value()),
        Err(e) => Err((
            v.span(),
            format!("`value_json` is not valid JSON: {e}; fix the JSON text"),
        )),
    }
}

/// RFC 8259 number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_number_grammar() {
        for ok in [
            "0", "-0", "1", "10", "1.5", "1e5", "1E-5", "1.0e+05", "-0.25",
        ] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "1_0", "inf", "0x1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn related_and_inside() {
        let t = |s: &str| pointer_tokens(s).unwrap_or_default();
        assert!(related(&t("/a"), &t("/a/b")));
        assert!(related(&t("/a/b"), &t("/a")));
        assert!(related(&t("/a"), &t("/a")));
        assert!(!related(&t("/a"), &t("/ab")));
        assert!(strictly_inside(&t("/a/b"), &t("/a")));
        assert!(!strictly_inside(&t("/a"), &t("/a")));
        assert!(!strictly_inside(&t("/a"), &t("/a/b")));
    }

    #[test]
    fn file_names_of_the_from_to_shape() {
        assert_eq!(
            versions_in_name(".artifact-migrate/migrations/1.2.0-1.3.0.toml"),
            Some((Version::new(1, 2, 0), Version::new(1, 3, 0)))
        );
        assert_eq!(versions_in_name("0003-rename-model.toml"), None);
        assert_eq!(versions_in_name("rename.toml"), None);
    }
}
