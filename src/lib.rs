//! # artifact-migrate
//!
//! Evolves the schema of JSON run manifests kept in a git repository, one audited commit
//! per batch. The data path is the architecture:
//!
//! ```text
//! scan HEAD tree (git::scan) → plan: which manifests, which path (schema::Registry)
//! → transform, pure: bytes in, bytes + changes out (engine::migrate, manifest::Document)
//! → check invariants (engine::invariants) → write objects as one pack (git::objects)
//! → commit, compare-and-swap on the branch (git::refs) → update working tree (git::worktree)
//! ```
//!
//! The library is usable without the CLI: open a [`git::Repo`], load a [`config::Config`],
//! build a [`schema::Registry`] (the built-ins, plus any [`schema::Migration`] you
//! implement), then call [`engine::plan`] or [`engine::apply`]; [`engine::preview()`] shows
//! one committed manifest at a version without writing anything. Every error says what
//! kind it is ([`error::ErrorKind`]: the CLI's exit code, a server's HTTP status).
//! [`index::Index`] keeps every manifest and batch of a commit queryable in SQLite or
//! PostgreSQL, rebuilt from git.

pub mod config;
pub mod engine;
pub mod error;
pub mod fault;
pub mod git;
pub mod ids;
pub mod index;
pub mod interrupt;
pub mod layout;
pub mod manifest;
pub mod merge;
pub mod schema;
pub mod serve;
