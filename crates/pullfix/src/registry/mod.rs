//! Everything about registries: image references, pull-secret credentials
//! and the keyring that matches them, and a client that talks the
//! distribution API.

pub mod client;
pub mod hosts;
pub mod ecr;
pub mod keyring;
pub mod reference;

#[cfg(test)]
mod props;
