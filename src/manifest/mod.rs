//! The manifest document: bytes in, bytes out.
//!
//! This module owns reading a manifest strictly (RFC 8259, with a byte span for every token),
//! editing it without disturbing any byte outside the changed members (SPEC §8), and the canonical
//! JSON form and checksum of SPEC §5. It never touches the file system or git: callers hand it
//! bytes and take bytes back.
//!
//! - [`value`]: the owned semantic value [`Json`] and RFC 6901 pointers.
//! - [`parse`]: the strict span-keeping parser and its errors.
//! - [`style`]: detection of a document's layout conventions.
//! - [`mod@render`]: writing new values in a style.
//! - [`edit`]: the edits and how each becomes one byte splice.
//! - [`canonical`]: the canonical form and `sha256:` checksums.

pub mod canonical;
pub mod edit;
pub mod parse;
pub mod render;
pub mod style;
pub mod value;

#[cfg(test)]
pub(crate) mod proptests;
#[cfg(test)]
mod tests;

pub use canonical::{canonical_json, sha256_prefixed};
pub use edit::{Edit, EditError};
pub use parse::{ParseError, ParseErrorKind, MAX_DEPTH};
pub use render::render;
pub use style::Style;
pub use value::{escape_pointer_token, pointer_tokens, Json};

use parse::Node;

/// The value of a JSON document, read as strictly as [`Document::parse`] reads it, for a caller
/// that will not edit it: no spans, style or copy of the text are kept.
pub fn parse_value(bytes: &[u8]) -> Result<Json, ParseError> {
    parse::parse_value(bytes)
}

/// A parsed JSON document that keeps its exact source bytes and the spans of every token.
#[derive(Clone)]
pub struct Document {
    src: String,
    root: Node,
    style: Style,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("src", &self.src)
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

impl Document {
    /// Parses `bytes` strictly; any JSON value is accepted as the root (the caller checks for an
    /// object).
    pub fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
        let parsed = parse::parse_bytes(bytes)?;
        let style = Style::detect(&parsed.src, &parsed.root, parsed.escapes);
        Ok(Document {
            src: parsed.src,
            root: parsed.root,
            style,
        })
    }

    /// The owned semantic value of the document.
    pub fn value(&self) -> Json {
        self.root.to_json(&self.src)
    }

    /// The document's current bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.src.as_bytes()
    }

    /// The document's current text (always valid UTF-8).
    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// Consumes the document, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.src.into_bytes()
    }

    /// The layout conventions detected when the document was last parsed.
    pub fn style(&self) -> &Style {
        &self.style
    }

    /// Applies one edit by splicing the bytes and re-parsing what the splice touched. On error
    /// the document is left unchanged.
    ///
    /// The style stays the one detected from the original bytes, so a series of edits keeps
    /// writing in the file's style even when an edit opens up the only multi-line container.
    pub fn apply(&mut self, edit: &Edit) -> Result<(), EditError> {
        let splice = edit::plan(&self.src, &self.root, &self.style, edit)?;
        let (Some(before), Some(after)) =
            (self.src.get(..splice.start), self.src.get(splice.end..))
        else {
            return Err(EditError::Invalid {
                pointer: edit.pointer().to_string(),
                reason: "internal error: splice outside the document".to_string(),
            });
        };
        let mut next = String::with_capacity(before.len() + splice.text.len() + after.len());
        next.push_str(before);
        next.push_str(&splice.text);
        next.push_str(after);
        let changed = parse::Changed {
            start: splice.start,
            old_end: splice.end,
            new_end: splice.start + splice.text.len(),
        };
        // The untouched subtrees move into the new tree; should the new text not parse, the
        // old tree is read again from the old text, which parsed before.
        let old = std::mem::replace(&mut self.root, Node::placeholder());
        match parse::reparse(&next, old, changed) {
            Ok(root) => {
                self.src = next;
                self.root = root;
                Ok(())
            }
            Err(e) => {
                self.root = parse::parse_text(&self.src)
                    .map_err(|e| EditError::invalid(edit.pointer(), &e))?;
                Err(EditError::invalid(edit.pointer(), &e))
            }
        }
    }
}
