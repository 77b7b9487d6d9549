//! berth-build: parse -> plan -> execute -> snapshot -> store/export.
pub mod context;
pub mod dockerfile;
