//! The practice sandbox and the simulated node side of a cluster: an
//! embedded API server, registry and ECR endpoint, minimal controllers, and
//! a kubelet that registers nodes and really pulls, with the wording of a
//! chosen kubelet/runtime profile.

pub mod apiserver;
pub mod cluster;
pub mod controllers;
pub mod ecr;
pub mod kubelet;
pub mod practice;
pub mod profile;
pub mod registry;
pub mod server;
pub mod train;
