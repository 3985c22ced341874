//! Minimal controllers for the sandbox (work in progress).
