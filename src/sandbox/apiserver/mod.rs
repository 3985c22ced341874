//! The sandbox's embedded Kubernetes API server (work in progress).

pub mod patch;
pub mod select;
pub mod table;
