//! The one integration test binary. Lab tests need `scripts/lab up` and the
//! environment from `scripts/lab env` (the README test command does both).

#[path = "integration/manifest.rs"]
mod manifest;

#[path = "integration/lab.rs"]
mod lab;

#[path = "integration/diagnose.rs"]
mod diagnose;

#[path = "integration/fix.rs"]
mod fix;

#[path = "integration/sandbox.rs"]
mod sandbox;

#[path = "integration/gateway.rs"]
mod gateway;

#[path = "integration/registry_hosts.rs"]
mod registry_hosts;

#[path = "integration/input.rs"]
mod input;

#[path = "integration/shell.rs"]
mod shell;

#[path = "integration/truthful.rs"]
mod truthful;

#[path = "integration/conventions.rs"]
mod conventions;

#[path = "integration/pty.rs"]
mod pty;

#[path = "integration/hostile_text.rs"]
mod hostile_text;

#[path = "integration/bounded.rs"]
mod bounded;

#[path = "integration/undo.rs"]
mod undo;

#[path = "integration/hostile.rs"]
mod hostile;

#[path = "integration/untested.rs"]
mod untested;

#[path = "integration/outage.rs"]
mod outage;

#[path = "integration/real_node.rs"]
mod real_node;
