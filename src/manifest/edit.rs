//! Format-preserving edits: each edit becomes one byte splice of the source (SPEC §8).
//!
//! Only the bytes of the changed member are touched. A new member copies the whitespace in front
//! of an existing sibling, goes to its sorted place when the object's keys are sorted (after the
//! last member otherwise), and is written in the document's [`Style`].

use crate::manifest::parse::{Member, Node, NodeKind, ParseError, MAX_DEPTH};
use crate::manifest::render::{write_string, write_value};
use crate::manifest::style::{line_indent, Style};
use crate::manifest::value::{array_index, escape_pointer_token, pointer_tokens, Json};

/// One change to a document, addressed by an RFC 6901 pointer.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Insert a member into the object at the parent pointer; fails if the key exists.
    Add {
        /// Pointer to the new member (`"/parent/key"`).
        pointer: String,
        /// The new member's value.
        value: Json,
    },
    /// Replace the value of an existing member or array element (only the value's bytes change);
    /// a missing object member is inserted like [`Edit::Add`]. `""` replaces the whole document.
    Set {
        /// Pointer to the member or element.
        pointer: String,
        /// The new value.
        value: Json,
    },
    /// Remove an object member or array element with exactly one adjacent separator (the comma
    /// before the last child, the comma after any other); removing the only child leaves `{}`/`[]`.
    Remove {
        /// Pointer to the member or element.
        pointer: String,
    },
    /// Replace just the key token of a member; fails if `new_key` exists in the same object.
    Rename {
        /// Pointer to the member.
        pointer: String,
        /// The member's new key.
        new_key: String,
    },
    /// Append an element to the array at `pointer`.
    Append {
        /// Pointer to the array.
        pointer: String,
        /// The new element.
        value: Json,
    },
}

impl Edit {
    /// The pointer the edit addresses.
    pub fn pointer(&self) -> &str {
        match self {
            Edit::Add { pointer, .. }
            | Edit::Set { pointer, .. }
            | Edit::Remove { pointer }
            | Edit::Rename { pointer, .. }
            | Edit::Append { pointer, .. } => pointer,
        }
    }
}

/// Why an edit could not be applied; the document is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// Nothing exists at this pointer.
    #[error("no value at json pointer {0:?}")]
    NotFound(String),
    /// A member already exists at this pointer.
    #[error("a member already exists at json pointer {0:?}")]
    Exists(String),
    /// The value at this pointer is not an object.
    #[error("the value at json pointer {0:?} is not an object")]
    NotAnObject(String),
    /// The value at this pointer is not an array.
    #[error("the value at json pointer {0:?} is not an array")]
    NotAnArray(String),
    /// The pointer is malformed, or names the root where a member is needed.
    #[error("json pointer {0:?} is not valid for this edit (use \"/key/0\" paths, ~0 for '~' and ~1 for '/')")]
    BadPointer(String),
    /// The edit would leave a document that does not parse (for example nesting beyond the limit,
    /// or a number whose text is not a JSON number).
    #[error("the edit at json pointer {pointer:?} would not leave valid json: {reason}")]
    Invalid {
        /// The pointer of the edit.
        pointer: String,
        /// What made the result invalid.
        reason: String,
    },
}

impl EditError {
    pub(crate) fn invalid(pointer: &str, err: &ParseError) -> EditError {
        EditError::Invalid {
            pointer: pointer.to_string(),
            reason: err.to_string(),
        }
    }
}

/// Replace `start..end` of the source with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Turns an edit into the single splice that performs it.
pub(crate) fn plan(
    src: &str,
    root: &Node,
    style: &Style,
    edit: &Edit,
) -> Result<Splice, EditError> {
    let ctx = Ctx { src, style };
    match edit {
        Edit::Add { pointer, value } => {
            check_depth(pointer, value)?;
            let (parent, key) = ctx.parent(root, pointer)?;
            let NodeKind::Object(members) = &parent.node.kind else {
                return Err(EditError::NotAnObject(parent.pointer));
            };
            if members.iter().any(|m| m.key == key) {
                return Err(EditError::Exists(pointer.clone()));
            }
            Ok(ctx.insert_member(parent.node, members, &key, value))
        }
        Edit::Set { pointer, value } => {
            check_depth(pointer, value)?;
            if pointer.is_empty() {
                let text = ctx.render(value, style.multiline, line_indent(src, root.start));
                return Ok(Splice {
                    start: root.start,
                    end: root.end,
                    text,
                });
            }
            let (parent, key) = ctx.parent(root, pointer)?;
            let multiline = ctx.spans_lines(parent.node);
            match &parent.node.kind {
                NodeKind::Object(members) => match members.iter().find(|m| m.key == key) {
                    Some(m) => Ok(Splice {
                        start: m.value.start,
                        end: m.value.end,
                        text: ctx.render(value, multiline, line_indent(src, m.key_start)),
                    }),
                    None => Ok(ctx.insert_member(parent.node, members, &key, value)),
                },
                NodeKind::Array(items) => {
                    let item = array_index(&key)
                        .and_then(|i| items.get(i))
                        .ok_or_else(|| EditError::NotFound(pointer.clone()))?;
                    Ok(Splice {
                        start: item.start,
                        end: item.end,
                        text: ctx.render(value, multiline, line_indent(src, item.start)),
                    })
                }
                _ => Err(EditError::NotAnObject(parent.pointer)),
            }
        }
        Edit::Remove { pointer } => {
            let (parent, key) = ctx.parent(root, pointer)?;
            let index = match &parent.node.kind {
                NodeKind::Object(members) => members.iter().position(|m| m.key == key),
                NodeKind::Array(items) => array_index(&key).filter(|&i| i < items.len()),
                _ => return Err(EditError::NotAnObject(parent.pointer)),
            };
            let index = index.ok_or_else(|| EditError::NotFound(pointer.clone()))?;
            Ok(ctx.remove_child(parent.node, index))
        }
        Edit::Rename { pointer, new_key } => {
            let (parent, key) = ctx.parent(root, pointer)?;
            let NodeKind::Object(members) = &parent.node.kind else {
                return Err(EditError::NotAnObject(parent.pointer));
            };
            let member = members
                .iter()
                .find(|m| m.key == key)
                .ok_or_else(|| EditError::NotFound(pointer.clone()))?;
            if *new_key != key && members.iter().any(|m| m.key == *new_key) {
                return Err(EditError::Exists(format!(
                    "{}/{}",
                    parent.pointer,
                    escape_pointer_token(new_key)
                )));
            }
            let mut text = String::new();
            if *new_key == key {
                text.push_str(src.get(member.key_start..member.key_end).unwrap_or(""));
            } else {
                write_string(&mut text, new_key, style.ascii, style.upper_hex);
            }
            Ok(Splice {
                start: member.key_start,
                end: member.key_end,
                text,
            })
        }
        Edit::Append { pointer, value } => {
            check_depth(pointer, value)?;
            let tokens =
                pointer_tokens(pointer).ok_or_else(|| EditError::BadPointer(pointer.clone()))?;
            let node = ctx.resolve(root, &tokens)?;
            if !matches!(node.kind, NodeKind::Array(_)) {
                return Err(EditError::NotAnArray(pointer.clone()));
            }
            Ok(ctx.append_child(node, |out, ind, multiline| {
                ctx.write(out, value, multiline, ind)
            }))
        }
    }
}

/// Refuses values nested deeper than the parser would accept, before rendering recurses into them.
fn check_depth(pointer: &str, value: &Json) -> Result<(), EditError> {
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Json>> = match v {
            Json::Array(items) => Box::new(items.iter()),
            Json::Object(members) => Box::new(members.iter().map(|(_, v)| v)),
            _ => continue,
        };
        if depth > MAX_DEPTH {
            return Err(EditError::Invalid {
                pointer: pointer.to_string(),
                reason: format!("the new value is nested deeper than {MAX_DEPTH} levels"),
            });
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// A node found by pointer, with the pointer text that names it (for error messages).
struct Found<'a> {
    node: &'a Node,
    pointer: String,
}

struct Ctx<'a> {
    src: &'a str,
    style: &'a Style,
}

impl Ctx<'_> {
    fn slice(&self, start: usize, end: usize) -> &str {
        self.src.get(start..end).unwrap_or("")
    }

    fn spans_lines(&self, node: &Node) -> bool {
        self.slice(node.start, node.end).contains('\n')
    }

    fn resolve<'n>(&self, root: &'n Node, tokens: &[String]) -> Result<&'n Node, EditError> {
        let mut cur = root;
        let mut path = String::new();
        for token in tokens {
            path.push('/');
            path.push_str(&escape_pointer_token(token));
            let next = match &cur.kind {
                NodeKind::Object(members) => {
                    members.iter().find(|m| m.key == *token).map(|m| &m.value)
                }
                NodeKind::Array(items) => array_index(token).and_then(|i| items.get(i)),
                _ => None,
            };
            cur = next.ok_or_else(|| EditError::NotFound(path.clone()))?;
        }
        Ok(cur)
    }

    /// The container holding the member a pointer names, and that member's key or index token.
    fn parent<'n>(&self, root: &'n Node, pointer: &str) -> Result<(Found<'n>, String), EditError> {
        let mut tokens =
            pointer_tokens(pointer).ok_or_else(|| EditError::BadPointer(pointer.to_string()))?;
        let last = tokens
            .pop()
            .ok_or_else(|| EditError::BadPointer(pointer.to_string()))?;
        let node = self.resolve(root, &tokens)?;
        let parent_pointer: String = tokens
            .iter()
            .map(|t| format!("/{}", escape_pointer_token(t)))
            .collect();
        Ok((
            Found {
                node,
                pointer: parent_pointer,
            },
            last,
        ))
    }

    fn write(&self, out: &mut String, value: &Json, multiline: bool, indent: &str) {
        if multiline == self.style.multiline {
            write_value(out, value, self.style, indent);
        } else {
            let style = Style {
                multiline,
                ..self.style.clone()
            };
            write_value(out, value, &style, indent);
        }
    }

    fn render(&self, value: &Json, multiline: bool, indent: &str) -> String {
        let mut out = String::new();
        self.write(&mut out, value, multiline, indent);
        out
    }

    /// The text between two children of `node` (comma included), copied from the node itself where
    /// it has a gap to copy: the gap in front of child `at` if that exists, else the first gap,
    /// else the first child's line break and indentation, else the style's one-line separator.
    fn gap(&self, node: &Node, at: usize) -> String {
        let n = node.child_count();
        let gap_before = |i: usize| -> Option<String> {
            if i == 0 || i >= n {
                return None;
            }
            Some(
                self.slice(node.child_end(i - 1)?, node.child_start(i)?)
                    .to_string(),
            )
        };
        if let Some(g) = gap_before(at).or_else(|| gap_before(1)) {
            return g;
        }
        let first_prefix = node
            .child_start(0)
            .map_or("", |first| self.slice(node.start + 1, first));
        if first_prefix.contains('\n') {
            format!(",{first_prefix}")
        } else {
            self.style.item_sep.clone()
        }
    }

    /// The key separator to copy from an existing member of `node` (the style's when it has none
    /// on one line).
    fn key_sep(&self, node: &Node, near: usize) -> String {
        if let NodeKind::Object(members) = &node.kind {
            if let Some(m) = members.get(near) {
                let sep = self.slice(m.key_end, m.value.start);
                if !sep.contains(['\n', '\r']) {
                    return sep.to_string();
                }
            }
        }
        self.style.key_sep.clone()
    }

    fn write_member(
        &self,
        out: &mut String,
        key: &str,
        sep: &str,
        value: &Json,
        multiline: bool,
        indent: &str,
    ) {
        write_string(out, key, self.style.ascii, self.style.upper_hex);
        out.push_str(sep);
        self.write(out, value, multiline, indent);
    }

    fn insert_member(&self, obj: &Node, members: &[Member], key: &str, value: &Json) -> Splice {
        if members.is_empty() {
            return self.open_empty(obj, |out, ind, multiline| {
                self.write_member(out, key, &self.style.key_sep, value, multiline, ind)
            });
        }
        let multiline = self.spans_lines(obj);
        let sorted = members.windows(2).all(|w| w[0].key <= w[1].key);
        let before = if sorted {
            members.iter().position(|m| m.key.as_str() > key)
        } else {
            None
        };
        match before {
            Some(k) => {
                let anchor = members[k].key_start;
                let indent = line_indent(self.src, anchor);
                let mut text = String::new();
                self.write_member(
                    &mut text,
                    key,
                    &self.key_sep(obj, k),
                    value,
                    multiline,
                    indent,
                );
                text.push_str(&self.gap(obj, k));
                Splice {
                    start: anchor,
                    end: anchor,
                    text,
                }
            }
            None => self.append_child(obj, |out, indent, multiline| {
                let sep = self.key_sep(obj, members.len() - 1);
                self.write_member(out, key, &sep, value, multiline, indent)
            }),
        }
    }

    /// Appends a child after the last one of a container (opening it up if it is empty).
    fn append_child(&self, node: &Node, write: impl Fn(&mut String, &str, bool)) -> Splice {
        let last = node.child_count().checked_sub(1);
        let (Some(last), Some(last_start), Some(last_end)) = (
            last,
            last.and_then(|l| node.child_start(l)),
            last.and_then(|l| node.child_end(l)),
        ) else {
            return self.open_empty(node, write);
        };
        let mut text = self.gap(node, last);
        write(
            &mut text,
            line_indent(self.src, last_start),
            self.spans_lines(node),
        );
        Splice {
            start: last_end,
            end: last_end,
            text,
        }
    }

    /// Replaces an empty container with one holding a single child: opened over three lines in a
    /// multi-line document, `{child}` / `[child]` in a one-line one.
    fn open_empty(&self, node: &Node, write: impl Fn(&mut String, &str, bool)) -> Splice {
        let (open, close) = match node.kind {
            NodeKind::Object(_) => ('{', '}'),
            _ => ('[', ']'),
        };
        let mut text = String::new();
        text.push(open);
        if self.style.multiline {
            let outer = line_indent(self.src, node.start);
            let inner = format!("{outer}{}", self.style.indent);
            text.push_str(&self.style.newline);
            text.push_str(&inner);
            write(&mut text, &inner, true);
            text.push_str(&self.style.newline);
            text.push_str(outer);
        } else {
            write(&mut text, line_indent(self.src, node.start), false);
        }
        text.push(close);
        Splice {
            start: node.start,
            end: node.end,
            text,
        }
    }

    /// Removes child `i` with one adjacent separator.
    fn remove_child(&self, node: &Node, i: usize) -> Splice {
        let n = node.child_count();
        let empty = |text: &str| Splice {
            start: node.start,
            end: node.end,
            text: text.to_string(),
        };
        let is_object = matches!(node.kind, NodeKind::Object(_));
        if n <= 1 {
            return empty(if is_object { "{}" } else { "[]" });
        }
        let span = if i + 1 == n {
            // The last child takes the comma before it; the closing bracket keeps its whitespace.
            (node.child_end(i - 1), node.child_end(i))
        } else {
            // Any other child takes the comma after it; the next child inherits its indentation.
            (node.child_start(i), node.child_start(i + 1))
        };
        match span {
            (Some(start), Some(end)) => Splice {
                start,
                end,
                text: String::new(),
            },
            _ => empty(if is_object { "{}" } else { "[]" }),
        }
    }
}
