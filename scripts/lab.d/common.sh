# shellcheck shell=bash
# shellcheck disable=SC2015 # `a && b || fail` is meant: fail if either fails
# scripts/lab.d/common.sh: shared variables and helpers for the lab scripts.
#
# Sourced (never executed) by bash scripts. Safe under `set -euo pipefail`:
# every function returns 0 on success and non-zero only on a real failure.
# See docs/lab-contract.md for the meaning of the variables and files.

: "${PULLFIX_LAB_DIR:=/tmp/pullfix-lab}"
: "${PULLFIX_CACHE:=${HOME:-/root}/.cache/kubectl-pullfix}"
: "${PULLFIX_LAB_PORT_BASE:=26400}"
export PULLFIX_LAB_DIR PULLFIX_CACHE PULLFIX_LAB_PORT_BASE

# lab_port OFFSET: echo PULLFIX_LAB_PORT_BASE + OFFSET.
lab_port() {
    echo $((PULLFIX_LAB_PORT_BASE + $1))
}

# lab_log MSG...: one line to stderr, prefixed "lab: ".
lab_log() {
    printf 'lab: %s\n' "$*" >&2
}

# lab_die MSG...: log and return 1 (callers under `set -e` stop there).
lab_die() {
    lab_log "error: $*"
    return 1
}

# lab_wait_port HOST PORT SECONDS: wait until a TCP connect to HOST:PORT
# succeeds. Returns 0 once it does, 1 after SECONDS without success.
lab_wait_port() {
    local host=$1 port=$2 secs=$3 deadline
    deadline=$((SECONDS + secs))
    while :; do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            lab_log "timed out after ${secs}s waiting for $host:$port"
            return 1
        fi
        sleep 0.2
    done
}

# lab_pid_alive PID: 0 when PID is a live process. A zombie counts as dead:
# daemons started by lab_start are reparented to pid 1, which may take a
# second or more to reap them, and `kill -0` succeeds on a zombie.
lab_pid_alive() {
    local stat rest st
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    # (Not `$(<file)`: under `set -e` a vanished file aborts the shell.)
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    rest=${stat##*) }
    st=${rest%% *}
    [[ $st != Z && $st != X ]]
}

# lab_group_alive PGID: 0 when a live (non-zombie) process is in PGID.
lab_group_alive() {
    local f stat rest st pg _
    for f in /proc/[0-9]*/stat; do
        { read -r stat <"$f"; } 2>/dev/null || continue
        rest=${stat##*) }
        read -r st _ pg _ <<<"$rest"
        if [[ $pg == "$1" && $st != Z && $st != X ]]; then
            return 0
        fi
    done
    return 1
}

# lab_start NAME CMD [ARGS...]: start a daemon in its own session and process
# group (setsid), stdin from /dev/null, stdout+stderr appended to
# $PULLFIX_LAB_DIR/logs/NAME.log, pid (== its process group id) written to
# $PULLFIX_LAB_DIR/pids/NAME.pid. Returns at once; use lab_wait_port or a
# readiness probe to wait for it. Fails if NAME is already running.
lab_start() {
    local name=$1
    shift
    local pidfile="$PULLFIX_LAB_DIR/pids/$name.pid"
    local logfile="$PULLFIX_LAB_DIR/logs/$name.log"
    mkdir -p "$PULLFIX_LAB_DIR/pids" "$PULLFIX_LAB_DIR/logs"
    if [[ -s $pidfile ]] && lab_pid_alive "$(cat "$pidfile")"; then
        lab_die "$name already running (pid $(cat "$pidfile"))"
        return 1
    fi
    rm -f "$pidfile"
    # `setsid --fork` always forks, so the daemon is a new session and
    # process group leader whatever the caller's job control; the daemon
    # records its own pid (== its pgid) before exec'ing the command.
    # shellcheck disable=SC2016
    setsid --fork bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
        </dev/null >>"$logfile" 2>&1
    local i pid=
    for ((i = 0; i < 50; i++)); do
        if [[ -s $pidfile ]]; then
            pid=$(cat "$pidfile")
            break
        fi
        sleep 0.1
    done
    if [[ -z $pid ]]; then
        lab_die "$name: no pid file after 5 s; see $logfile"
        return 1
    fi
    # Give an immediately failing command a moment to show it.
    sleep 0.2
    if ! lab_pid_alive "$pid"; then
        lab_log "$name exited at once; last lines of $logfile:"
        tail -n 20 "$logfile" >&2 || true
        rm -f "$pidfile"
        return 1
    fi
    return 0
}

# lab_alive NAME: 0 when NAME's pid file names a live process.
lab_alive() {
    local pidfile="$PULLFIX_LAB_DIR/pids/$1.pid"
    [[ -s $pidfile ]] && lab_pid_alive "$(cat "$pidfile")"
}

# lab_stop NAME...: TERM each named daemon's process group, wait up to 5 s
# for all of them, then KILL what is left; remove their pid files.
lab_stop() {
    local name pid pids=() files=()
    for name in "$@"; do
        local f="$PULLFIX_LAB_DIR/pids/$name.pid"
        [[ -e $f ]] || continue
        files+=("$f")
        pid=$(cat "$f" 2>/dev/null || true)
        if [[ ! $pid =~ ^[0-9]+$ ]] || ((pid <= 1)); then
            continue
        fi
        pids+=("$pid")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 5)) alive
    while :; do
        alive=()
        for pid in ${pids[@]+"${pids[@]}"}; do
            # A group is gone when no live member is left (zombies
            # waiting for pid 1 to reap them do not count).
            if lab_group_alive "$pid" || lab_pid_alive "$pid"; then
                alive+=("$pid")
            fi
        done
        ((${#alive[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            for pid in "${alive[@]}"; do
                lab_log "pid $pid did not stop after TERM; sending KILL"
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            done
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    rm -f ${files[@]+"${files[@]}"}
    return 0
}

# lab_stop_all: lab_stop every daemon that has a pid file.
lab_stop_all() {
    local f names=()
    [[ -d $PULLFIX_LAB_DIR/pids ]] || return 0
    for f in "$PULLFIX_LAB_DIR"/pids/*.pid; do
        [[ -e $f ]] || continue
        f=${f##*/}
        names+=("${f%.pid}")
    done
    ((${#names[@]} == 0)) && return 0
    lab_stop "${names[@]}"
}

# lab_port_in_use PORT [HOST]: 0 when something accepts TCP connections on
# HOST:PORT (default 127.0.0.1).
lab_port_in_use() {
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

# lab_ensure_ca: create the lab CA ($PULLFIX_LAB_DIR/pki/ca.crt, ca.key;
# RSA 2048, CA:TRUE, 10 years) unless it exists. Safe to call from
# concurrent lab pieces (flock on pki/.ca.lock): all of them get one CA.
lab_ensure_ca() {
    local pki="$PULLFIX_LAB_DIR/pki"
    mkdir -p "$pki"
    (
        flock -w 60 9 || { lab_die "timed out waiting for $pki/.ca.lock"; exit 1; }
        [[ -s $pki/ca.crt && -s $pki/ca.key ]] && exit 0
        local cfg="$pki/.ca.cnf"
        cat >"$cfg" <<'CNF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = pullfix-lab CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
CNF
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -config "$cfg" -keyout "$pki/ca.key.tmp" -out "$pki/ca.crt.tmp" 2>"$pki/.ca.err" ||
            { lab_die "creating the lab CA failed: $(cat "$pki/.ca.err")"; exit 1; }
        chmod 600 "$pki/ca.key.tmp"
        mv "$pki/ca.key.tmp" "$pki/ca.key"
        mv "$pki/ca.crt.tmp" "$pki/ca.crt"
        rm -f "$cfg" "$pki/.ca.err"
    ) 9>"$pki/.ca.lock"
}

# lab_issue_cert NAME CN SAN...: a leaf certificate signed by the lab CA:
# $PULLFIX_LAB_DIR/pki/NAME.crt and NAME.key (RSA 2048, CA:FALSE,
# extendedKeyUsage serverAuth, 825 days). Each SAN is `IP:1.2.3.4` or
# `DNS:name`. rustls rejects a self-signed cert used as its own CA
# (CaUsedAsEndEntity), hence CA + leaf. Overwrites an existing NAME.
lab_issue_cert() {
    local name=$1 cn=$2
    shift 2
    local pki="$PULLFIX_LAB_DIR/pki" sans
    lab_ensure_ca || return 1
    sans=$(IFS=,; echo "$*")
    local ext="$pki/.$name.ext"
    cat >"$ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $sans
EXT
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=$cn" \
        -keyout "$pki/$name.key" -out "$pki/.$name.csr" 2>"$pki/.$name.err" &&
        openssl x509 -req -sha256 -days 825 -in "$pki/.$name.csr" \
            -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
            -extfile "$ext" -out "$pki/$name.crt" 2>>"$pki/.$name.err" ||
        { lab_die "issuing $name certificate failed: $(cat "$pki/.$name.err")"; return 1; }
    chmod 600 "$pki/$name.key"
    rm -f "$ext" "$pki/.$name.csr" "$pki/.$name.err"
}
