# shellcheck shell=bash
# shellcheck disable=SC2015 # `a && b || fail` is meant: fail if either fails
# scripts/lab.d/install.sh: idempotent installs of what the lab needs.
#
# Sourced after common.sh. Runs as root on Debian 12 (bookworm); apt output
# goes to $PULLFIX_CACHE/install.log, the terminal gets one line per step.
# When everything is present the functions return in well under a second
# without touching apt.

# Debian packages the control plane needs at build and run time.
#   golang-1.19-go                       compiler for kube-apiserver & co
#   golang-github-modern-go-reflect2-dev reflect2 1.0.2 (vendor's 1.0.1 crashes on Go >= 1.18)
#   etcd-server                          etcd 3.4
#   openssl                              SA key pair, lab CA, serving cert, tokens
#   curl                                 readiness probes
#   kubernetes-client                    /usr/bin/kubectl 1.20 (Debian has no package named
#                                        `kubectl`); skipped when a kubectl is already on PATH
#   ca-certificates, tar, gzip           apt-get source over https mirrors, unpacking
LAB_CP_PACKAGES=(golang-1.19-go golang-github-modern-go-reflect2-dev etcd-server
    openssl curl kubernetes-client ca-certificates tar gzip gcc libc6-dev binutils)
# The real node (realnode.sh): Debian's runtime pieces.
LAB_RN_PACKAGES=(containerd runc containernetworking-plugins iproute2 util-linux skopeo)

# lab_install_log: path of the install log (created on demand).
lab_install_log() {
    mkdir -p "$PULLFIX_CACHE"
    echo "$PULLFIX_CACHE/install.log"
}

# lab_apt_missing PKG...: echo the packages that are not installed.
# A kubectl already on PATH counts for kubernetes-client (any kubectl will do).
lab_apt_missing() {
    local p
    for p in "$@"; do
        if [[ $p == kubernetes-client ]] && command -v kubectl >/dev/null 2>&1; then
            continue
        fi
        if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
            echo "$p"
        fi
    done
}

# lab_apt_update: apt-get update, quietly, logged.
lab_apt_update() {
    local log
    log=$(lab_install_log)
    lab_log "apt-get update"
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update >>"$log" 2>&1; then
        lab_log "apt-get update failed; see $log"
        tail -n 20 "$log" >&2
        return 1
    fi
}

# lab_apt_install PKG...: install the missing ones among PKG (apt-get update
# first when apt does not know one of them yet). No-op when all present.
lab_apt_install() {
    local missing log p need_update=0
    missing=$(lab_apt_missing "$@")
    [[ -z $missing ]] && return 0
    log=$(lab_install_log)
    for p in $missing; do
        # No candidate: the package lists are empty or stale.
        # (Output captured first: `cmd | grep -q` fails under pipefail
        # when grep exits early and cmd gets SIGPIPE.)
        local policy
        policy=$(apt-cache policy "$p" 2>/dev/null || true)
        if [[ ! $policy =~ Candidate:\ [^\(] ]]; then
            need_update=1
        fi
    done
    if ((need_update)); then
        lab_apt_update || return 1
    fi
    # shellcheck disable=SC2086
    lab_log "apt-get install" $missing
    # Keep package maintainer scripts from starting services (etcd-server
    # ships a unit / init script; the lab runs its own etcd on its own port).
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    # shellcheck disable=SC2086
    # DPkg::Lock::Timeout: wait for a concurrent apt (another lab piece,
    # unattended upgrades) instead of failing at once.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        $missing >>"$log" 2>&1 || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((rc != 0)); then
        lab_log "apt-get install failed; see $log"
        tail -n 20 "$log" >&2
        return 1
    fi
}

# lab_debian_mirror: echo the Debian mirror URI the machine's apt uses for
# the main archive (not -security), default http://deb.debian.org/debian.
lab_debian_mirror() {
    local uri=
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        # deb822: first URIs of a stanza not about -security.
        uri=$(awk '
            /^[[:space:]]*$/ { if (u != "" && s !~ /security/) { print u; exit } u = ""; s = ""; next }
            /^URIs:/   { u = $2 }
            /^Suites:/ { s = $0 }
            END { if (u != "" && s !~ /security/) print u }
        ' /etc/apt/sources.list.d/debian.sources | head -n 1)
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list | head -n 1)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# lab_codename: the Debian suite (bookworm on Debian 12).
lab_codename() {
    local c=
    # shellcheck disable=SC1091
    c=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    echo "${c:-bookworm}"
}

LAB_DEB_SRC_FILE=/etc/apt/sources.list.d/pullfix-lab-deb-src.sources

# lab_have_deb_src: 0 when apt has a source index for SUITE main.
lab_have_deb_src() {
    local suite
    suite=$(lab_codename)
    compgen -G "/var/lib/apt/lists/*_dists_${suite}_main_source_Sources*" >/dev/null
}

# lab_enable_deb_src: make `apt-get source kubernetes` work. Adds a deb822
# deb-src entry for the machine's main Debian mirror and suite (unless one
# is configured already) and runs apt-get update when the source index is
# missing. Quick no-op afterwards (it only looks for the index file).
lab_enable_deb_src() {
    lab_have_deb_src && return 0
    local suite mirror
    suite=$(lab_codename)
    # (Added even when some other deb-src entry exists: that one may be for
    # another archive; a duplicate of a Debian one only makes apt warn.)
    if [[ ! -e $LAB_DEB_SRC_FILE ]]; then
        mirror=$(lab_debian_mirror)
        lab_log "adding deb-src entry ($mirror $suite main) in $LAB_DEB_SRC_FILE"
        cat >"$LAB_DEB_SRC_FILE" <<EOF
# Added by kubectl-pullfix's scripts/lab: source packages, to build the
# Kubernetes control plane from Debian's kubernetes source package.
Types: deb-src
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    lab_apt_update || return 1
    if ! lab_have_deb_src; then
        lab_die "no source index for $suite main after apt-get update (deb-src entry?)"
        return 1
    fi
}

# lab_install_control_plane: everything cp_build and cp_up need, installed
# idempotently: deb-src entry + source index, Go 1.19, reflect2 1.0.2, etcd,
# openssl, curl, kubectl. Returns quickly when all is there.
lab_install_control_plane() {
    lab_enable_deb_src || return 1
    lab_apt_install "${LAB_CP_PACKAGES[@]}" || return 1
    local f
    for f in /usr/lib/go-1.19/bin/go /usr/bin/etcd /usr/share/gocode/src/github.com/modern-go/reflect2/reflect2.go; do
        [[ -e $f ]] || { lab_die "expected $f after install"; return 1; }
    done
    command -v kubectl >/dev/null || { lab_die "kubectl not on PATH after install"; return 1; }
    return 0
}

# lab_install_real_node: containerd, runc, the CNI plugins and ip, for
# `lab-real`, and skopeo (containers/image, CRI-O's pull library, whose
# texts the tests record) (the package's own containerd service never starts: see
# lab_apt_install's policy-rc.d).
lab_install_real_node() {
    lab_apt_install "${LAB_RN_PACKAGES[@]}" || return 1
    local c
    for c in containerd ctr runc ip nsenter skopeo; do
        command -v "$c" >/dev/null 2>&1 || { lab_die "$c not on PATH after install"; return 1; }
    done
    [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
        { lab_die "CNI plugins missing from /usr/lib/cni after install"; return 1; }
}

# --- registries ---

# lab_install_registries: everything reg_up needs, idempotent and quiet
# when present. Debian packages (service start blocked by lab_apt_install's
# policy-rc.d):
#   docker-registry  CNCF distribution 2.8.2 (`docker-registry serve CONFIG`)
#   apache2-utils    htpasswd (-B: bcrypt, the only hash distribution accepts)
#   openssl          lab CA leaves, the untrusted CA, the token signing cert
# and for python3 (pyenv CPython 3.11): moto[server] 5.x (ECR API server;
# brings boto3, flask) and cryptography (the token issuer's RS256
# signatures). No pip call when all of them are found.
lab_install_registries() {
    lab_apt_install docker-registry apache2-utils openssl || return 1
    local py log
    py=$(command -v python3) || { lab_die "python3 not on PATH"; return 1; }
    # find_spec, not import: importing moto.server takes about a second.
    local check='import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("moto", "boto3", "cryptography", "flask", "flask_cors", "werkzeug")))'
    if ! "$py" -c "$check" >/dev/null 2>&1; then
        log=$(lab_install_log)
        lab_log "pip install moto[server] cryptography"
        if ! "$py" -m pip install --quiet --disable-pip-version-check \
            'moto[server]>=5,<6' cryptography >>"$log" 2>&1; then
            lab_log "pip install failed; see $log"
            tail -n 20 "$log" >&2
            return 1
        fi
        # pyenv: make the new moto_server script visible through the shims.
        if command -v pyenv >/dev/null 2>&1; then
            pyenv rehash >/dev/null 2>&1 || true
        fi
        "$py" -c 'import moto.server, boto3, cryptography' >/dev/null 2>&1 ||
            { lab_die "moto/boto3/cryptography still not importable by $py"; return 1; }
    fi
    local c
    for c in docker-registry htpasswd openssl; do
        command -v "$c" >/dev/null 2>&1 || { lab_die "$c not on PATH after install"; return 1; }
    done
    return 0
}
