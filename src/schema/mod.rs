//! Schema versions, the `Migration` trait, the built-in migrations and the registry.

pub mod builtin;
pub mod checksum;
pub mod declarative;
pub mod migration;
pub mod registry;
pub mod validation;
pub mod version;

pub use declarative::{DeclarativeMigration, LoadError};
pub use migration::{Change, Migration, MigrationContext, MigrationError, StepId};
pub use registry::{describe_path, LintFinding, Registry, RegistryError};
pub use validation::{SchemaSet, SchemaViolation};
pub use version::{Version, VersionError};
