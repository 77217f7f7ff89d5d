//! Schema versions, the `Migration` trait, the built-in migrations and the registry.

pub mod builtin;
pub mod migration;
pub mod registry;
pub mod version;

pub use migration::{Change, Migration, MigrationContext, MigrationError, StepId};
pub use registry::{describe_path, LintFinding, Registry, RegistryError};
pub use version::{Version, VersionError};
