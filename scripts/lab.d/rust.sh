# shellcheck shell=bash
# rust_ensure: make `cargo` available on a fresh machine. Debian's own
# cargo is too old for this crate (edition 2024), so this installs rustup's
# minimal stable toolchain for the current user, plus a C compiler
# (aws-lc-rs builds C), when they are missing. Quiet when present.
rust_ensure() {
    if ! command -v cc >/dev/null 2>&1; then
        echo "installing a C compiler (apt-get install build-essential)" >&2
        if [[ $(id -u) -ne 0 ]]; then
            echo "error: a C compiler is missing and this is not root: install build-essential" >&2
            return 2
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
    fi
    [[ -r ${CARGO_HOME:-$HOME/.cargo}/env ]] && . "${CARGO_HOME:-$HOME/.cargo}/env"
    if command -v cargo >/dev/null 2>&1; then
        return 0
    fi
    echo "installing the Rust toolchain (rustup, minimal profile, stable)" >&2
    if ! command -v curl >/dev/null 2>&1; then
        [[ $(id -u) -eq 0 ]] || { echo "error: curl is missing: install curl, then rerun" >&2; return 2; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates >/dev/null
    fi
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain stable -c rustfmt -c clippy >/dev/null
    . "${CARGO_HOME:-$HOME/.cargo}/env"
    command -v cargo >/dev/null 2>&1 || { echo "error: rustup ran but cargo is still not on PATH" >&2; return 2; }
}
