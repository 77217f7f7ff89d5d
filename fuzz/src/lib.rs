//! Helpers of the fuzz targets: independent implementations the library is checked against.
//!
//! Nothing here reuses the library's own parser or serializer: the span scanner is a second,
//! deliberately simple reader of JSON that the library already accepted; strings are decoded
//! by serde_json; the canonical form is written from Python's `json.dumps` rules; edits are
//! replayed on `serde_json::Value`. A disagreement is a bug in one of the two, and the fuzz
//! target panics so libFuzzer keeps the input.

pub mod canonical;
pub mod model;
pub mod spans;
