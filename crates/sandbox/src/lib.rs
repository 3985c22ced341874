//! The practice sandbox and the simulated node side of a cluster: an
//! embedded API server, registry and ECR endpoint, minimal controllers, and
//! a kubelet that registers nodes and really pulls, with the wording of a
//! chosen kubelet/runtime profile.
//!
//! It depends on the product library (`pullfix`) and never the other way:
//! the plugin uses it behind its default `sandbox` feature, and the lab's
//! helper binary (`pullfix-lab`) uses it for the simulated kubelet and the
//! scenario fixtures.

pub mod apiserver;
#[cfg(test)]
mod classify_fidelity;
pub mod cluster;
pub mod controllers;
pub mod ecr;
pub mod kubelet;
pub mod practice;
pub mod profile;
pub mod registry;
pub mod scenarios;
pub mod server;
pub mod train;
