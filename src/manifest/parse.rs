//! The strict RFC 8259 parser that keeps a byte span for every token.
//!
//! It rejects everything a lenient reader might silently accept (comments, trailing commas,
//! NaN/Infinity, leading zeros, single quotes, raw control characters, lone surrogates, a byte
//! order mark, duplicate keys), limits nesting to [`MAX_DEPTH`] without recursing any deeper, and
//! records the spans the editor splices at.

use std::collections::HashSet;

use crate::manifest::value::Json;

/// The deepest nesting of arrays and objects a document may have.
pub const MAX_DEPTH: usize = 128;

/// Why a document could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The input is empty or only whitespace.
    Empty,
    /// The input is not valid UTF-8 from this byte offset on.
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The input starts with a UTF-8 byte order mark, which JSON does not allow.
    ByteOrderMark,
    /// A character that cannot appear here.
    UnexpectedChar {
        /// The character found.
        found: char,
        /// What the grammar expected instead.
        expected: &'static str,
    },
    /// The input ended in the middle of a value.
    UnexpectedEnd {
        /// What the grammar expected instead.
        expected: &'static str,
    },
    /// A `,` directly before `}` or `]`.
    TrailingComma,
    /// A `//` or `/*` comment.
    Comment,
    /// A single-quoted string.
    SingleQuote,
    /// A malformed number (the reason says which rule it breaks).
    InvalidNumber(&'static str),
    /// A backslash escape JSON does not define (the escape as written).
    InvalidEscape(String),
    /// A `\u` escape of a UTF-16 surrogate without its partner (the code unit).
    LoneSurrogate(u16),
    /// A raw control character (below U+0020) inside a string.
    ControlCharInString(char),
    /// A key that occurs twice in one object.
    DuplicateKey(String),
    /// Nesting deeper than the limit (the limit).
    TooDeep(usize),
    /// Something other than whitespace after the root value.
    TrailingData,
}

impl std::fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseErrorKind::Empty => write!(f, "empty file"),
            ParseErrorKind::InvalidUtf8 { offset } => {
                write!(f, "invalid utf-8 at byte offset {offset}")
            }
            ParseErrorKind::ByteOrderMark => {
                write!(
                    f,
                    "file starts with a utf-8 byte order mark, which json does not allow"
                )
            }
            ParseErrorKind::UnexpectedChar { found, expected } => {
                write!(f, "unexpected character {found:?}, expected {expected}")
            }
            ParseErrorKind::UnexpectedEnd { expected } => {
                write!(f, "unexpected end of input, expected {expected}")
            }
            ParseErrorKind::TrailingComma => write!(f, "trailing comma"),
            ParseErrorKind::Comment => write!(f, "comments are not allowed in json"),
            ParseErrorKind::SingleQuote => {
                write!(
                    f,
                    "single-quoted strings are not allowed, use double quotes"
                )
            }
            ParseErrorKind::InvalidNumber(why) => write!(f, "invalid number: {why}"),
            ParseErrorKind::InvalidEscape(esc) => write!(f, "invalid escape sequence {esc}"),
            ParseErrorKind::LoneSurrogate(unit) => {
                write!(f, "lone surrogate \\u{unit:04x} in string")
            }
            ParseErrorKind::ControlCharInString(c) => write!(
                f,
                "unescaped control character U+{:04X} in string",
                u32::from(*c)
            ),
            ParseErrorKind::DuplicateKey(key) => write!(f, "duplicate key {key:?}"),
            ParseErrorKind::TooDeep(limit) => write!(f, "nesting deeper than {limit} levels"),
            ParseErrorKind::TrailingData => write!(f, "unexpected data after the json value"),
        }
    }
}

/// A parse failure with its 1-based position (column counted in characters).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl ParseError {
    /// Builds an error at byte offset `at` of `bytes`.
    pub(crate) fn at(kind: ParseErrorKind, bytes: &[u8], at: usize) -> ParseError {
        let prefix = &bytes[..at.min(bytes.len())];
        let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = prefix
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        // Count characters, not bytes: UTF-8 continuation bytes do not start a character.
        let column = prefix[line_start..]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count()
            + 1;
        ParseError { kind, line, column }
    }
}

/// A parsed value with its byte span `start..end` in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: NodeKind,
}

/// The shape of a [`Node`]; numbers are read from the source by span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Number,
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

/// An object member: the decoded key, the key token's span (quotes included) and the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub value: Node,
}

impl Node {
    /// A node that stands in while a tree is taken apart ([`reparse`]).
    pub fn placeholder() -> Node {
        Node {
            start: 0,
            end: 0,
            kind: NodeKind::Null,
        }
    }

    /// The owned semantic value of this node.
    pub fn to_json(&self, src: &str) -> Json {
        match &self.kind {
            NodeKind::Null => Json::Null,
            NodeKind::Bool(b) => Json::Bool(*b),
            NodeKind::Number => {
                Json::Number(src.get(self.start..self.end).unwrap_or("").to_string())
            }
            NodeKind::String(s) => Json::String(s.clone()),
            NodeKind::Array(items) => Json::Array(items.iter().map(|n| n.to_json(src)).collect()),
            NodeKind::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), m.value.to_json(src)))
                    .collect(),
            ),
        }
    }

    /// [`Node::to_json`] that consumes the node, moving its strings instead of copying them.
    pub fn into_json(self, src: &str) -> Json {
        match self.kind {
            NodeKind::Null => Json::Null,
            NodeKind::Bool(b) => Json::Bool(b),
            NodeKind::Number => {
                Json::Number(src.get(self.start..self.end).unwrap_or("").to_string())
            }
            NodeKind::String(s) => Json::String(s),
            NodeKind::Array(items) => {
                Json::Array(items.into_iter().map(|n| n.into_json(src)).collect())
            }
            NodeKind::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|m| (m.key, m.value.into_json(src)))
                    .collect(),
            ),
        }
    }

    /// The start of child `i`'s first token (its key for an object member).
    pub fn child_start(&self, i: usize) -> Option<usize> {
        match &self.kind {
            NodeKind::Array(items) => items.get(i).map(|n| n.start),
            NodeKind::Object(members) => members.get(i).map(|m| m.key_start),
            _ => None,
        }
    }

    /// The end of child `i`'s value.
    pub fn child_end(&self, i: usize) -> Option<usize> {
        match &self.kind {
            NodeKind::Array(items) => items.get(i).map(|n| n.end),
            NodeKind::Object(members) => members.get(i).map(|m| m.value.end),
            _ => None,
        }
    }

    /// The number of children of a container (0 for scalars).
    pub fn child_count(&self) -> usize {
        match &self.kind {
            NodeKind::Array(items) => items.len(),
            NodeKind::Object(members) => members.len(),
            _ => 0,
        }
    }
}

/// What the parser noticed about `\u` escapes, for style detection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EscapeStats {
    /// A `\u` escape of a code point at or above U+0080 was seen.
    pub non_ascii_escape: bool,
    /// Hex digits `A`–`F` were seen in a `\u` escape.
    pub upper_hex: bool,
    /// Hex digits `a`–`f` were seen in a `\u` escape.
    pub lower_hex: bool,
}

/// The result of a successful parse: the validated source, the span tree and escape statistics.
pub(crate) struct Parsed {
    pub src: String,
    pub root: Node,
    pub escapes: EscapeStats,
}

/// Parses `bytes` strictly into a span tree.
pub(crate) fn parse_bytes(bytes: &[u8]) -> Result<Parsed, ParseError> {
    let src = checked_text(bytes)?;
    let (root, escapes) = parse_str(src)?;
    Ok(Parsed {
        src: src.to_string(),
        root,
        escapes,
    })
}

/// Parses `bytes` as strictly as [`parse_bytes`], for the value alone: the decoded strings move
/// into it, and neither the text nor the spans are kept.
pub(crate) fn parse_value(bytes: &[u8]) -> Result<Json, ParseError> {
    let src = checked_text(bytes)?;
    let (root, _) = parse_str(src)?;
    Ok(root.into_json(src))
}

/// `bytes` as text: no byte order mark, valid UTF-8.
fn checked_text(bytes: &[u8]) -> Result<&str, ParseError> {
    refuse_bom(bytes)?;
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        ParseError::at(ParseErrorKind::InvalidUtf8 { offset }, bytes, offset)
    })
}

/// The span tree of text that is already a `str` (an edited document): no UTF-8 check to repeat.
pub(crate) fn parse_text(src: &str) -> Result<Node, ParseError> {
    refuse_bom(src.as_bytes())?;
    parse_str(src).map(|(root, _)| root)
}

/// JSON text may not start with a UTF-8 byte order mark.
fn refuse_bom(bytes: &[u8]) -> Result<(), ParseError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(ParseError::at(ParseErrorKind::ByteOrderMark, bytes, 0));
    }
    Ok(())
}

/// Where one splice changed a document: old bytes `start..old_end` became `start..new_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changed {
    pub start: usize,
    pub old_end: usize,
    pub new_end: usize,
}

/// [`parse_text`] of an edited document, given the span tree of the document before the
/// splice: every old subtree wholly outside the changed bytes is moved into the new tree (its
/// spans shifted) instead of being parsed again.
///
/// The result is the tree a full parse gives. A value's parse reads only its own bytes and the one
/// byte after it, so a subtree that ends before `changed.start`, or starts at or after
/// `changed.old_end`, parses the same from the same bytes. Only the nesting depth around it could
/// differ, and only in a document that then fails to parse: the bytes after the splice close the
/// same number of containers as before. On any failure the text is parsed again in full, so the
/// error is the full parse's too.
pub(crate) fn reparse(src: &str, old: Node, changed: Changed) -> Result<Node, ParseError> {
    refuse_bom(src.as_bytes())?;
    let mut reuse = Vec::new();
    harvest(old, changed, &mut reuse);
    let mut p = Parser {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        escapes: EscapeStats::default(),
        reuse: reuse.into_iter().peekable(),
    };
    p.document().or_else(|_| parse_text(src))
}

/// A part of the document before an edit that the re-parse can take over whole.
pub(crate) enum Reused {
    /// A value, at a value's place.
    Value(Node),
    /// An object member, key and value, at a key's place.
    Member(Member),
}

impl Reused {
    fn start(&self) -> usize {
        match self {
            Reused::Value(n) => n.start,
            Reused::Member(m) => m.key_start,
        }
    }
}

/// Collects, in source order, the largest values and object members of `node` that the splice
/// leaves untouched, with the spans of those after it moved to where their bytes now are.
fn harvest(node: Node, changed: Changed, out: &mut Vec<Reused>) {
    if node.end < changed.start {
        out.push(Reused::Value(node));
    } else if node.start >= changed.old_end {
        let mut node = node;
        shift(&mut node, changed);
        out.push(Reused::Value(node));
    } else {
        match node.kind {
            NodeKind::Array(items) => items.into_iter().for_each(|n| harvest(n, changed, out)),
            NodeKind::Object(members) => {
                for mut m in members {
                    // A member's parse reads its key, the colon, its value and the byte after.
                    if m.value.end < changed.start {
                        out.push(Reused::Member(m));
                    } else if m.key_start >= changed.old_end {
                        shift_member(&mut m, changed);
                        out.push(Reused::Member(m));
                    } else {
                        harvest(m.value, changed, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Moves the spans of a subtree that starts at or after `changed.old_end` by the splice's change
/// in length.
fn shift(node: &mut Node, changed: Changed) {
    node.start = moved(node.start, changed);
    node.end = moved(node.end, changed);
    match &mut node.kind {
        NodeKind::Array(items) => items.iter_mut().for_each(|n| shift(n, changed)),
        NodeKind::Object(members) => members.iter_mut().for_each(|m| shift_member(m, changed)),
        _ => {}
    }
}

fn shift_member(m: &mut Member, changed: Changed) {
    m.key_start = moved(m.key_start, changed);
    m.key_end = moved(m.key_end, changed);
    shift(&mut m.value, changed);
}

fn moved(at: usize, changed: Changed) -> usize {
    at - changed.old_end + changed.new_end
}

fn parse_str(src: &str) -> Result<(Node, EscapeStats), ParseError> {
    let mut p = Parser {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        escapes: EscapeStats::default(),
        reuse: Vec::new().into_iter().peekable(),
    };
    let root = p.document()?;
    Ok((root, p.escapes))
}

impl Parser<'_> {
    /// The whole input: one value between optional whitespace.
    fn document(&mut self) -> Result<Node, ParseError> {
        self.skip_ws();
        if self.pos >= self.bytes.len() {
            return Err(self.err(ParseErrorKind::Empty, 0));
        }
        let root = self.value(0)?;
        self.skip_ws();
        if self.pos < self.bytes.len() {
            if self.is_comment_start() {
                return Err(self.err(ParseErrorKind::Comment, self.pos));
            }
            return Err(self.err(ParseErrorKind::TrailingData, self.pos));
        }
        Ok(root)
    }
}

/// Whether `key` is already among `members`: a linear look over the few members a manifest
/// object has, and a set (`seen`, made on first need) for large objects.
fn is_duplicate(members: &[Member], seen: &mut Option<HashSet<String>>, key: &str) -> bool {
    match seen {
        Some(set) => !set.insert(key.to_string()),
        None if members.len() < 32 => members.iter().any(|m| m.key == key),
        None => {
            let mut set: HashSet<String> = members.iter().map(|m| m.key.clone()).collect();
            let dup = !set.insert(key.to_string());
            *seen = Some(set);
            dup
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    escapes: EscapeStats,
    /// Subtrees of the document before an edit, in source order, each at its new span
    /// ([`reparse`]); empty for a full parse.
    reuse: std::iter::Peekable<std::vec::IntoIter<Reused>>,
}

impl Parser<'_> {
    fn err(&self, kind: ParseErrorKind, at: usize) -> ParseError {
        ParseError::at(kind, self.bytes, at)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn is_comment_start(&self) -> bool {
        self.peek() == Some(b'/') && matches!(self.bytes.get(self.pos + 1), Some(b'/' | b'*'))
    }

    /// The error for whatever stands at the current position when `expected` was wanted.
    fn unexpected(&self, expected: &'static str) -> ParseError {
        if self.is_comment_start() {
            return self.err(ParseErrorKind::Comment, self.pos);
        }
        match self.src.get(self.pos..).and_then(|s| s.chars().next()) {
            None => self.err(ParseErrorKind::UnexpectedEnd { expected }, self.pos),
            Some(found) => self.err(ParseErrorKind::UnexpectedChar { found, expected }, self.pos),
        }
    }

    /// Parses one value; `depth` is the number of containers around it.
    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        let start = self.pos;
        if let Some(Reused::Value(node)) = self.reused(|r| matches!(r, Reused::Value(_))) {
            self.pos = node.end;
            return Ok(node);
        }
        let kind = match self.peek() {
            Some(b'{') => return self.object(depth + 1),
            Some(b'[') => return self.array(depth + 1),
            Some(b'"') => NodeKind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                NodeKind::Number
            }
            Some(b'\'') => return Err(self.err(ParseErrorKind::SingleQuote, start)),
            Some(b) if b.is_ascii_alphabetic() => self.literal()?,
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Node {
            start,
            end: self.pos,
            kind,
        })
    }

    fn literal(&mut self) -> Result<NodeKind, ParseError> {
        let rest = &self.bytes[self.pos..];
        for (word, kind) in [
            (&b"true"[..], NodeKind::Bool(true)),
            (&b"false"[..], NodeKind::Bool(false)),
            (&b"null"[..], NodeKind::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(kind);
            }
        }
        let word_len = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if matches!(&rest[..word_len], b"NaN" | b"Infinity") {
            return Err(self.err(
                ParseErrorKind::InvalidNumber("nan and infinity are not allowed"),
                self.pos,
            ));
        }
        Err(self.unexpected("a value"))
    }

    fn digits(&mut self) -> usize {
        let n = self.bytes[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.pos += n;
        n
    }

    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.err(
                        ParseErrorKind::InvalidNumber("leading zeros are not allowed"),
                        start,
                    ));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(b'I') => {
                return Err(self.err(
                    ParseErrorKind::InvalidNumber("nan and infinity are not allowed"),
                    start,
                ))
            }
            _ => {
                return Err(self.err(
                    ParseErrorKind::InvalidNumber("expected a digit after '-'"),
                    self.pos,
                ))
            }
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err(
                    ParseErrorKind::InvalidNumber("expected a digit after the decimal point"),
                    self.pos,
                ));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err(
                    ParseErrorKind::InvalidNumber("expected a digit in the exponent"),
                    self.pos,
                ));
            }
        }
        Ok(())
    }

    fn hex4(&mut self, esc_start: usize) -> Result<u16, ParseError> {
        let digits = self.bytes.get(self.pos..self.pos + 4);
        let valid = digits.filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        let Some(d) = valid else {
            let end = (self.pos + 4).min(self.bytes.len());
            let shown = self.src.get(esc_start..end).unwrap_or("\\u").to_string();
            return Err(self.err(ParseErrorKind::InvalidEscape(shown), esc_start));
        };
        let mut unit: u16 = 0;
        for &b in d {
            if b.is_ascii_uppercase() {
                self.escapes.upper_hex = true;
            } else if b.is_ascii_lowercase() {
                self.escapes.lower_hex = true;
            }
            let v = (b as char).to_digit(16).unwrap_or(0) as u16;
            unit = unit * 16 + v;
        }
        self.pos += 4;
        Ok(unit)
    }

    /// Parses a string token starting at its opening quote and returns the decoded text.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            // Skip the plain bytes in one tight scan; stop at a quote, backslash or control.
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            self.pos += rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(rest.len());
            let Some(b) = self.peek() else {
                return Err(self.err(
                    ParseErrorKind::UnexpectedEnd {
                        expected: "'\"' to close the string",
                    },
                    self.pos,
                ));
            };
            match b {
                b'"' => {
                    out.push_str(self.src.get(run..self.pos).unwrap_or(""));
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(self.src.get(run..self.pos).unwrap_or(""));
                    self.escape(&mut out)?;
                    run = self.pos;
                }
                0x00..=0x1F => {
                    return Err(self.err(ParseErrorKind::ControlCharInString(b as char), self.pos))
                }
                _ => self.pos += 1,
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), ParseError> {
        let esc_start = self.pos;
        self.pos += 1; // backslash
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4(esc_start)?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        let low = if self.bytes[self.pos..].starts_with(b"\\u") {
                            let second = self.pos;
                            self.pos += 2;
                            let low = self.hex4(second)?;
                            (0xDC00..=0xDFFF).contains(&low).then_some(low)
                        } else {
                            None
                        };
                        let Some(low) = low else {
                            return Err(self.err(ParseErrorKind::LoneSurrogate(unit), esc_start));
                        };
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.err(ParseErrorKind::LoneSurrogate(unit), esc_start))
                    }
                    _ => u32::from(unit),
                };
                if code >= 0x80 {
                    self.escapes.non_ascii_escape = true;
                }
                let Some(ch) = char::from_u32(code) else {
                    return Err(self.err(ParseErrorKind::LoneSurrogate(unit), esc_start));
                };
                out.push(ch);
                return Ok(());
            }
            None => {
                return Err(self.err(
                    ParseErrorKind::UnexpectedEnd {
                        expected: "an escape character",
                    },
                    self.pos,
                ))
            }
            Some(_) => {
                let ch = self.src.get(self.pos..).and_then(|s| s.chars().next());
                let shown = format!("\\{}", ch.unwrap_or('?'));
                return Err(self.err(ParseErrorKind::InvalidEscape(shown), esc_start));
            }
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    /// The part of the old document that starts here, if it is of the kind `fits` accepts
    /// ([`reparse`]); parts the parse has passed without taking are dropped.
    fn reused(&mut self, fits: impl Fn(&Reused) -> bool) -> Option<Reused> {
        let pos = self.pos;
        while self.reuse.next_if(|r| r.start() < pos).is_some() {}
        self.reuse.next_if(|r| r.start() == pos && fits(r))
    }

    fn enter(&self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(ParseErrorKind::TooDeep(MAX_DEPTH), self.pos));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Node, ParseError> {
        self.enter(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut members: Vec<Member> = Vec::new();
        let mut seen: Option<HashSet<String>> = None;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node {
                start,
                end: self.pos,
                kind: NodeKind::Object(members),
            });
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                Some(b'}') if !members.is_empty() => {
                    return Err(self.err(ParseErrorKind::TrailingComma, self.pos))
                }
                Some(b'\'') => return Err(self.err(ParseErrorKind::SingleQuote, self.pos)),
                _ => return Err(self.unexpected("a string key")),
            }
            if let Some(Reused::Member(m)) = self.reused(|r| matches!(r, Reused::Member(_))) {
                if is_duplicate(&members, &mut seen, &m.key) {
                    return Err(self.err(ParseErrorKind::DuplicateKey(m.key), m.key_start));
                }
                self.pos = m.value.end;
                members.push(m);
            } else {
                let key_start = self.pos;
                let key = self.string()?;
                let key_end = self.pos;
                if is_duplicate(&members, &mut seen, &key) {
                    return Err(self.err(ParseErrorKind::DuplicateKey(key), key_start));
                }
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(self.unexpected("':'"));
                }
                self.pos += 1;
                self.skip_ws();
                let value = self.value(depth)?;
                members.push(Member {
                    key,
                    key_start,
                    key_end,
                    value,
                });
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node {
                        start,
                        end: self.pos,
                        kind: NodeKind::Object(members),
                    });
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node, ParseError> {
        self.enter(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node {
                start,
                end: self.pos,
                kind: NodeKind::Array(items),
            });
        }
        loop {
            if self.peek() == Some(b']') && !items.is_empty() {
                return Err(self.err(ParseErrorKind::TrailingComma, self.pos));
            }
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node {
                        start,
                        end: self.pos,
                        kind: NodeKind::Array(items),
                    });
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(input: &str) -> ParseErrorKind {
        match parse_bytes(input.as_bytes()) {
            Ok(_) => panic!("expected an error for {input:?}"),
            Err(e) => e.kind,
        }
    }

    fn err_of(input: &[u8]) -> ParseError {
        match parse_bytes(input) {
            Ok(_) => panic!("expected an error for {input:?}"),
            Err(e) => e,
        }
    }

    fn value_of(input: &str) -> Json {
        match parse_bytes(input.as_bytes()) {
            Ok(p) => p.root.to_json(&p.src),
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    #[test]
    fn accepts_every_value_kind_as_root() {
        assert_eq!(value_of(" null "), Json::Null);
        assert_eq!(value_of("true"), Json::Bool(true));
        assert_eq!(value_of("false\n"), Json::Bool(false));
        assert_eq!(value_of("\"x\""), Json::str("x"));
        assert_eq!(value_of("[]"), Json::Array(vec![]));
        assert_eq!(value_of("{}"), Json::Object(vec![]));
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        for n in [
            "0",
            "-0",
            "-0.0",
            "1.0",
            "1e-400",
            "1E+5",
            "1e400",
            "123456789012345678901234567890",
            "-12.500e07",
        ] {
            assert_eq!(value_of(n), Json::Number(n.to_string()), "{n}");
            assert_eq!(
                value_of(&format!("[{n}]")),
                Json::Array(vec![Json::Number(n.to_string())])
            );
        }
    }

    #[test]
    fn strings_decode_escapes_and_surrogate_pairs() {
        assert_eq!(
            value_of(r#""a\"b\\c\/d\b\f\n\r\t\u00fc\u00FC\ud83d\ude00""#),
            Json::str("a\"b\\c/d\u{8}\u{c}\n\r\tüü😀")
        );
        assert_eq!(
            value_of("\"raw ü 😀 \u{7f}\""),
            Json::str("raw ü 😀 \u{7f}")
        );
    }

    #[test]
    fn escape_stats_are_recorded() {
        let p = parse_bytes(br#"["\u00fc", "\u001F"]"#).map_err(|e| e.to_string());
        let stats = p.map(|p| p.escapes);
        assert_eq!(
            stats,
            Ok(EscapeStats {
                non_ascii_escape: true,
                upper_hex: true,
                lower_hex: true
            })
        );
    }

    #[test]
    fn spans_cover_keys_and_values() {
        let src = "{ \"a\" : [1, \"x\"] }";
        let p = parse_bytes(src.as_bytes()).map_err(|e| e.to_string());
        let Ok(p) = p else { panic!("parse failed") };
        assert_eq!((p.root.start, p.root.end), (0, src.len()));
        let NodeKind::Object(members) = &p.root.kind else {
            panic!("not an object")
        };
        assert_eq!(&src[members[0].key_start..members[0].key_end], "\"a\"");
        assert_eq!(
            &src[members[0].value.start..members[0].value.end],
            "[1, \"x\"]"
        );
        assert_eq!(p.root.child_start(0), Some(2));
        assert_eq!(p.root.child_end(0), Some(16));
        assert_eq!(p.root.child_count(), 1);
    }

    #[test]
    fn every_error_kind_with_message_and_position() {
        let cases: Vec<(&[u8], ParseErrorKind, &str)> = vec![
            (b"", ParseErrorKind::Empty, "line 1, column 1: empty file"),
            (b" \n\t ", ParseErrorKind::Empty, "line 1, column 1: empty file"),
            (
                b"{\"a\": \"\xff\"}",
                ParseErrorKind::InvalidUtf8 { offset: 7 },
                "line 1, column 8: invalid utf-8 at byte offset 7",
            ),
            (
                b"\xEF\xBB\xBF{}",
                ParseErrorKind::ByteOrderMark,
                "line 1, column 1: file starts with a utf-8 byte order mark, which json does not allow",
            ),
            (
                b"{\n  \"a\": 1\n  \"b\": 2\n}",
                ParseErrorKind::UnexpectedChar { found: '"', expected: "',' or '}'" },
                "line 3, column 3: unexpected character '\"', expected ',' or '}'",
            ),
            (
                b"{\"a\": [1, 2",
                ParseErrorKind::UnexpectedEnd { expected: "',' or ']'" },
                "line 1, column 12: unexpected end of input, expected ',' or ']'",
            ),
            (b"{\"a\": 1,}", ParseErrorKind::TrailingComma, "line 1, column 9: trailing comma"),
            (b"[1, 2, ]", ParseErrorKind::TrailingComma, "line 1, column 8: trailing comma"),
            (
                b"{\n  // note\n  \"a\": 1\n}",
                ParseErrorKind::Comment,
                "line 2, column 3: comments are not allowed in json",
            ),
            (b"[1] /* x */", ParseErrorKind::Comment, "line 1, column 5: comments are not allowed in json"),
            (
                b"{'a': 1}",
                ParseErrorKind::SingleQuote,
                "line 1, column 2: single-quoted strings are not allowed, use double quotes",
            ),
            (
                b"[01]",
                ParseErrorKind::InvalidNumber("leading zeros are not allowed"),
                "line 1, column 2: invalid number: leading zeros are not allowed",
            ),
            (
                b"[NaN]",
                ParseErrorKind::InvalidNumber("nan and infinity are not allowed"),
                "line 1, column 2: invalid number: nan and infinity are not allowed",
            ),
            (
                b"-Infinity",
                ParseErrorKind::InvalidNumber("nan and infinity are not allowed"),
                "line 1, column 1: invalid number: nan and infinity are not allowed",
            ),
            (
                b"1.",
                ParseErrorKind::InvalidNumber("expected a digit after the decimal point"),
                "line 1, column 3: invalid number: expected a digit after the decimal point",
            ),
            (
                b"1e+",
                ParseErrorKind::InvalidNumber("expected a digit in the exponent"),
                "line 1, column 4: invalid number: expected a digit in the exponent",
            ),
            (
                b"-x",
                ParseErrorKind::InvalidNumber("expected a digit after '-'"),
                "line 1, column 2: invalid number: expected a digit after '-'",
            ),
            (
                b"[\"a\\x\"]",
                ParseErrorKind::InvalidEscape("\\x".into()),
                "line 1, column 4: invalid escape sequence \\x",
            ),
            (
                b"\"\\u12G4\"",
                ParseErrorKind::InvalidEscape("\\u12G4".into()),
                "line 1, column 2: invalid escape sequence \\u12G4",
            ),
            (
                b"\"\\ud800\"",
                ParseErrorKind::LoneSurrogate(0xD800),
                "line 1, column 2: lone surrogate \\ud800 in string",
            ),
            (
                b"\"\\ud800\\u0041\"",
                ParseErrorKind::LoneSurrogate(0xD800),
                "line 1, column 2: lone surrogate \\ud800 in string",
            ),
            (
                b"\"x\\uDC00\"",
                ParseErrorKind::LoneSurrogate(0xDC00),
                "line 1, column 3: lone surrogate \\udc00 in string",
            ),
            (
                b"\"a\tb\"",
                ParseErrorKind::ControlCharInString('\t'),
                "line 1, column 3: unescaped control character U+0009 in string",
            ),
            (
                b"{\n  \"run_id\": \"a\",\n  \"run_id\": \"b\"\n}",
                ParseErrorKind::DuplicateKey("run_id".into()),
                "line 3, column 3: duplicate key \"run_id\"",
            ),
            (
                b"{} {}",
                ParseErrorKind::TrailingData,
                "line 1, column 4: unexpected data after the json value",
            ),
            (
                b"{\"a\" 1}",
                ParseErrorKind::UnexpectedChar { found: '1', expected: "':'" },
                "line 1, column 6: unexpected character '1', expected ':'",
            ),
            (
                b"{1: 2}",
                ParseErrorKind::UnexpectedChar { found: '1', expected: "a string key" },
                "line 1, column 2: unexpected character '1', expected a string key",
            ),
            (
                b"[tru]",
                ParseErrorKind::UnexpectedChar { found: 't', expected: "a value" },
                "line 1, column 2: unexpected character 't', expected a value",
            ),
            (
                "{\"ü\": x}".as_bytes(),
                ParseErrorKind::UnexpectedChar { found: 'x', expected: "a value" },
                "line 1, column 7: unexpected character 'x', expected a value",
            ),
            (
                b"\"abc",
                ParseErrorKind::UnexpectedEnd { expected: "'\"' to close the string" },
                "line 1, column 5: unexpected end of input, expected '\"' to close the string",
            ),
        ];
        for (input, kind, message) in cases {
            let e = err_of(input);
            assert_eq!(e.kind, kind, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(
                e.to_string(),
                message,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn too_deep_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(kind_of(&deep), ParseErrorKind::TooDeep(MAX_DEPTH));
        assert_eq!(
            err_of(deep.as_bytes()).to_string(),
            "line 1, column 129: nesting deeper than 128 levels"
        );
        let deep_obj = "{\"a\":".repeat(100_000);
        assert_eq!(kind_of(&deep_obj), ParseErrorKind::TooDeep(MAX_DEPTH));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_bytes(ok.as_bytes()).is_ok());
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(kind_of(&over), ParseErrorKind::TooDeep(MAX_DEPTH));
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        assert_eq!(
            kind_of(r#"{"a": [{"x": 1, "y": 2, "x": 3}]}"#),
            ParseErrorKind::DuplicateKey("x".into())
        );
        // The same key in sibling objects is fine; escaped spellings of one key are duplicates.
        assert!(parse_bytes(br#"[{"x": 1}, {"x": 2}]"#).is_ok());
        assert_eq!(
            kind_of(r#"{"\u0061": 1, "a": 2}"#),
            ParseErrorKind::DuplicateKey("a".into())
        );
    }
}
