//! A second, independent reader of JSON text that the library's parser accepted: byte spans
//! of every value, key token and container, and string tokens decoded by serde_json. It
//! returns `None` for anything it does not understand, which the targets treat as a
//! disagreement with the library's parser.

/// A value and its byte span `start..end`.
#[derive(Debug, Clone)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Null,
    Bool(bool),
    /// The number's exact text is `src[start..end]`.
    Number,
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

/// An object member: the decoded key, the key token's span (quotes included), the value.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub value: Node,
}

impl Node {
    /// Where child `i` begins (its key token for a member).
    pub fn child_start(&self, i: usize) -> usize {
        match &self.kind {
            Kind::Array(items) => items[i].start,
            Kind::Object(members) => members[i].key_start,
            _ => unreachable!("not a container"),
        }
    }

    /// Where child `i`'s value ends.
    pub fn child_end(&self, i: usize) -> usize {
        match &self.kind {
            Kind::Array(items) => items[i].end,
            Kind::Object(members) => members[i].value.end,
            _ => unreachable!("not a container"),
        }
    }

    pub fn child_count(&self) -> usize {
        match &self.kind {
            Kind::Array(items) => items.len(),
            Kind::Object(members) => members.len(),
            _ => 0,
        }
    }

    /// The node an RFC 6901 pointer names.
    pub fn at(&self, tokens: &[String]) -> Option<&Node> {
        let mut cur = self;
        for t in tokens {
            cur = match &cur.kind {
                Kind::Object(members) => &members.iter().find(|m| m.key == *t)?.value,
                Kind::Array(items) => {
                    if t.len() > 1 && t.starts_with('0') {
                        return None;
                    }
                    items.get(t.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// Scans a whole document (surrounding whitespace allowed).
pub fn scan(src: &str) -> Option<Node> {
    let mut s = Scanner {
        b: src.as_bytes(),
        src,
        pos: 0,
    };
    s.ws();
    let root = s.value()?;
    s.ws();
    (s.pos == s.b.len()).then_some(root)
}

struct Scanner<'a> {
    b: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.pos) == Some(&c)).then(|| self.pos += 1)
    }

    fn value(&mut self) -> Option<Node> {
        let start = self.pos;
        let kind =
            match *self.b.get(self.pos)? {
                b'n' => self.word("null", Kind::Null)?,
                b't' => self.word("true", Kind::Bool(true))?,
                b'f' => self.word("false", Kind::Bool(false))?,
                b'"' => Kind::String(self.string()?),
                b'[' => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat(b']').is_none() {
                        loop {
                            self.ws();
                            items.push(self.value()?);
                            self.ws();
                            if self.eat(b',').is_some() {
                                continue;
                            }
                            self.eat(b']')?;
                            break;
                        }
                    }
                    Kind::Array(items)
                }
                b'{' => {
                    self.pos += 1;
                    let mut members = Vec::new();
                    self.ws();
                    if self.eat(b'}').is_none() {
                        loop {
                            self.ws();
                            let key_start = self.pos;
                            let key = self.string()?;
                            let key_end = self.pos;
                            self.ws();
                            self.eat(b':')?;
                            self.ws();
                            let value = self.value()?;
                            members.push(Member {
                                key,
                                key_start,
                                key_end,
                                value,
                            });
                            self.ws();
                            if self.eat(b',').is_some() {
                                continue;
                            }
                            self.eat(b'}')?;
                            break;
                        }
                    }
                    Kind::Object(members)
                }
                b'-' | b'0'..=b'9' => {
                    while self.b.get(self.pos).is_some_and(|c| {
                        matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    }) {
                        self.pos += 1;
                    }
                    Kind::Number
                }
                _ => return None,
            };
        Some(Node {
            start,
            end: self.pos,
            kind,
        })
    }

    fn word(&mut self, w: &str, k: Kind) -> Option<Kind> {
        self.src[self.pos..].starts_with(w).then(|| {
            self.pos += w.len();
            k
        })
    }

    /// A string token, decoded by serde_json (not by the library).
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.eat(b'"')?;
        loop {
            match *self.b.get(self.pos)? {
                b'"' => break,
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        serde_json::from_str::<String>(self.src.get(start..self.pos)?).ok()
    }
}

/// The owned value of a scanned node, as serde_json sees it (numbers through serde_json).
pub fn to_serde(src: &str, n: &Node) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match &n.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Number => serde_json::from_str(&src[n.start..n.end]).ok()?,
        Kind::String(s) => Value::String(s.clone()),
        Kind::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| to_serde(src, i))
                .collect::<Option<_>>()?,
        ),
        Kind::Object(members) => Value::Object(
            members
                .iter()
                .map(|m| Some((m.key.clone(), to_serde(src, &m.value)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_members_and_elements() {
        let src = " {\"a\": [1, \"x\\n\"], \"b\\u00fc\" : {}} ";
        let root = scan(src).unwrap();
        assert_eq!(&src[root.start..root.end], src.trim());
        let Kind::Object(m) = &root.kind else {
            panic!()
        };
        assert_eq!(&src[m[0].key_start..m[0].key_end], "\"a\"");
        assert_eq!(&src[m[0].value.start..m[0].value.end], "[1, \"x\\n\"]");
        assert_eq!(m[1].key, "b\u{fc}");
        let x = root.at(&["a".into(), "1".into()]).unwrap();
        assert!(matches!(&x.kind, Kind::String(s) if s == "x\n"));
        assert!(root.at(&["a".into(), "01".into()]).is_none());
        assert!(scan("[1,]").is_none());
    }
}
