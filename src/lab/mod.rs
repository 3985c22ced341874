//! The lab's scenario fixtures: each failure from the runbook, set up in a
//! namespace of its own on a real control plane (or, later, the sandbox).

pub mod populate;
pub mod scenarios;
