//! Training mode for sandbox scenarios (work in progress).
