//! The owned semantic value of a JSON document.
//!
//! Numbers keep their exact source spelling and objects keep their source order, so a value read
//! from a manifest can be compared, hashed in canonical form and written back without any
//! re-spelling. Pointers follow RFC 6901.

/// A JSON value as read from a document.
///
/// Numbers are kept as their exact source text (`"1e-400"`, a 30-digit integer, `"-0.0"`), strings
/// are decoded, and object members keep their source order (duplicates are rejected by the parser).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its exact source text (for example `"1.0"` or `"123456789012345678901234567890"`).
    Number(String),
    /// A string, decoded (escapes resolved).
    String(String),
    /// An array, in order.
    Array(Vec<Json>),
    /// An object, members in source order.
    Object(Vec<(String, Json)>),
}

/// Splits an RFC 6901 pointer into its unescaped reference tokens.
///
/// `""` is the root (no tokens); every other pointer must start with `/`. `~0` is `~` and `~1` is `/`;
/// any other use of `~` makes the pointer invalid (`None`).
pub fn pointer_tokens(ptr: &str) -> Option<Vec<String>> {
    if ptr.is_empty() {
        return Some(Vec::new());
    }
    let rest = ptr.strip_prefix('/')?;
    rest.split('/').map(unescape_token).collect()
}

fn unescape_token(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Escapes one reference token for use in an RFC 6901 pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Parses an RFC 6901 array index: `0` or digits without a leading zero.
pub(crate) fn array_index(token: &str) -> Option<usize> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    token.parse().ok()
}

impl Json {
    /// The member `key` of an object (`None` for a missing key or a non-object).
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value at an RFC 6901 pointer (`""` is the root, `"/a/0/b"`, `~0`/`~1` escapes).
    pub fn pointer(&self, ptr: &str) -> Option<&Json> {
        let tokens = pointer_tokens(ptr)?;
        let mut cur = self;
        for token in &tokens {
            cur = match cur {
                Json::Object(_) => cur.get(token)?,
                Json::Array(items) => items.get(array_index(token)?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// What kind of value this is, for messages: `"null"`, `"a string"`, `"an object"`...
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The decoded text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The members of an object, in order.
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    /// Removes the member `key` from an object, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        match self {
            Json::Object(members) => {
                let idx = members.iter().position(|(k, _)| k == key)?;
                Some(members.remove(idx).1)
            }
            _ => None,
        }
    }

    /// Semantic equality: objects compared as maps (member order ignored), arrays in order,
    /// numbers by their exact source text.
    pub fn deep_eq(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(k2, _)| k2 == k)
                            .is_some_and(|(_, v2)| v.deep_eq(v2))
                    })
            }
            (Json::Array(a), Json::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.deep_eq(y))
            }
            _ => self == other,
        }
    }

    /// Converts a `serde_json` value (numbers via their `Display`, object members in the map's order).
    pub fn from_serde(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(items) => {
                Json::Array(items.iter().map(Json::from_serde).collect())
            }
            serde_json::Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to a `serde_json` value.
    ///
    /// Lossy for exotic numbers: a number is re-read by `serde_json`, so `1.0` may become `1.0_f64`
    /// printed differently, `1e-400` becomes `0.0`, integers beyond 64 bits become floats, and a
    /// number `serde_json` cannot hold at all (such as `1e400`) becomes `null`. Duplicate keys
    /// cannot occur in parsed values; in built ones the last member wins.
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(n @ serde_json::Value::Number(_)) => n,
                _ => serde_json::Value::Null,
            },
            Json::String(s) => serde_json::Value::String(s.clone()),
            Json::Array(items) => {
                serde_json::Value::Array(items.iter().map(Json::to_serde).collect())
            }
            Json::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_serde()))
                    .collect(),
            ),
        }
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::String(s.into())
    }

    /// An object value with the given members, in the given order.
    pub fn object(members: Vec<(String, Json)>) -> Json {
        Json::Object(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Json {
        Json::object(vec![
            (
                "a".into(),
                Json::Array(vec![
                    Json::Null,
                    Json::object(vec![("b".into(), Json::str("x"))]),
                ]),
            ),
            ("m~n".into(), Json::Bool(true)),
            ("p/q".into(), Json::Number("1.0".into())),
            ("".into(), Json::Number("0".into())),
        ])
    }

    #[test]
    fn pointer_resolves_rfc6901_examples() {
        let v = sample();
        assert_eq!(v.pointer(""), Some(&v));
        assert_eq!(v.pointer("/a/1/b"), Some(&Json::str("x")));
        assert_eq!(v.pointer("/a/0"), Some(&Json::Null));
        assert_eq!(v.pointer("/m~0n"), Some(&Json::Bool(true)));
        assert_eq!(v.pointer("/p~1q"), Some(&Json::Number("1.0".into())));
        assert_eq!(v.pointer("/"), Some(&Json::Number("0".into())));
        assert_eq!(v.pointer("/a/01"), None);
        assert_eq!(v.pointer("/a/-"), None);
        assert_eq!(v.pointer("/a/2"), None);
        assert_eq!(v.pointer("a"), None);
        assert_eq!(v.pointer("/m~2n"), None);
        assert_eq!(v.pointer("/a/1/b/c"), None);
    }

    #[test]
    fn accessors_and_remove_keep_order() {
        let mut v = sample();
        assert_eq!(
            v.get("a")
                .and_then(|a| a.pointer("/1/b"))
                .and_then(Json::as_str),
            Some("x")
        );
        assert_eq!(v.as_object().map(<[_]>::len), Some(4));
        assert_eq!(v.remove("m~n"), Some(Json::Bool(true)));
        assert_eq!(v.remove("missing"), None);
        let keys: Vec<&str> = v
            .as_object()
            .unwrap_or_default()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["a", "p/q", ""]);
        assert_eq!(Json::Null.as_str(), None);
        assert_eq!(Json::Null.get("a"), None);
    }

    #[test]
    fn deep_eq_ignores_member_order_but_not_number_spelling() {
        let a = Json::object(vec![
            ("x".into(), Json::Number("1".into())),
            ("y".into(), Json::Null),
        ]);
        let b = Json::object(vec![
            ("y".into(), Json::Null),
            ("x".into(), Json::Number("1".into())),
        ]);
        let c = Json::object(vec![
            ("y".into(), Json::Null),
            ("x".into(), Json::Number("1.0".into())),
        ]);
        assert!(a.deep_eq(&b));
        assert_ne!(a, b);
        assert!(!a.deep_eq(&c));
        let arr1 = Json::Array(vec![Json::Null, Json::Bool(false)]);
        let arr2 = Json::Array(vec![Json::Bool(false), Json::Null]);
        assert!(!arr1.deep_eq(&arr2));
    }

    #[test]
    fn serde_conversions() {
        let s = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {}});
        let j = Json::from_serde(&s);
        assert_eq!(j.pointer("/a/1"), Some(&Json::Number("2.5".into())));
        assert_eq!(j.to_serde(), s);
        assert_eq!(
            Json::Number("1e400".into()).to_serde(),
            serde_json::Value::Null
        );
    }
}
