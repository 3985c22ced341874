//! The simulated node side of a cluster: a kubelet that registers nodes and
//! really pulls, with the wording of a chosen kubelet/runtime profile.

pub mod kubelet;
pub mod profile;
pub mod registry;
