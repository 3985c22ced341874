# shellcheck shell=bash
# scripts/lab.d/registries.sh: the lab's registries, all on 127.0.0.1.
#
# Sourced by scripts/lab after common.sh. Functions:
#   reg_up    make PKI + configs, start every registry daemon, push images
#   reg_down  stop those daemons, remove their state (not the shared CA)
#   reg_env   print the export lines tests use (see docs/lab-contract.md)
#
# Port offsets (from PULLFIX_LAB_PORT_BASE):
#   +100 TLS + htpasswd (pullfix)     +101 TLS + bearer token (issuer +102)
#   +102 token issuer (https)         +103 plain HTTP, anonymous
#   +104 Docker Hub stub (https)      +105 moto (http, ECR API)
#   +106 TLS + htpasswd (AWS), the registry paired with moto's ECR
#   +107 TLS from a CA nobody trusts, anonymous ("TLS failure" registry)
#   +199 nothing listens (registry.unreachable.example)
#
# Daemons (pid files / logs named so): reg-basic reg-token reg-issuer
# reg-anon reg-hubstub reg-moto reg-ecr reg-untrusted.

if ! declare -F lab_port >/dev/null; then
    # shellcheck source=scripts/lab.d/common.sh
    source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

REG_LAB_D=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REG_DAEMONS=(reg-basic reg-token reg-issuer reg-anon reg-hubstub reg-moto reg-ecr reg-untrusted)
REG_ECR_HOST=123456789012.dkr.ecr.us-east-1.amazonaws.com
# A name only the nodes resolve (internal DNS, a VPC endpoint): the
# simulated kubelet maps it onto the TLS+Basic registry; `.example` never
# resolves anywhere else (RFC 2606).
REG_INTERNAL_HOST=registry.internal.example
REG_TOKEN_SERVICE=pullfix-lab-registry
REG_TOKEN_ISSUER=pullfix-lab-issuer

reg__dir() { echo "$PULLFIX_LAB_DIR/registries"; }
reg__pki() { echo "$PULLFIX_LAB_DIR/pki"; }

# reg__ca NAME CN: a fresh CA in pki/NAME.{crt,key}. Only for the UNTRUSTED
# CA; the lab CA comes from common.sh's lab_ensure_ca (shared, locked).
reg__ca() {
    local name=$1 cn=$2 pki
    pki=$(reg__pki)
    cat >"$pki/.$name.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = $cn
[v3]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 365 \
        -keyout "$pki/$name.key" -out "$pki/$name.crt" \
        -config "$pki/.$name.cnf" 2>/dev/null || lab_die "openssl: CA $name" || return 1
    chmod 600 "$pki/$name.key"
    rm -f "$pki/.$name.cnf"
}

# reg__leaf NAME CA SAN: pki/NAME.{crt,key}, a serverAuth leaf signed by
# pki/CA.{crt,key} with subjectAltName SAN (openssl syntax). Only for the
# untrusted leaf; lab-CA leaves use common.sh's lab_issue_cert.
reg__leaf() {
    local name=$1 ca=$2 san=$3 pki
    pki=$(reg__pki)
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=pullfix lab $name" \
        -keyout "$pki/$name.key" -out "$pki/.$name.csr" 2>/dev/null ||
        lab_die "openssl: key for $name" || return 1
    cat >"$pki/.$name.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
    openssl x509 -req -sha256 -days 30 -in "$pki/.$name.csr" \
        -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -extfile "$pki/.$name.ext" -out "$pki/$name.crt" 2>/dev/null ||
        lab_die "openssl: sign $name" || return 1
    chmod 600 "$pki/$name.key"
    rm -f "$pki/.$name.csr" "$pki/.$name.ext"
}

# reg__pki_make: the lab CA (lab_ensure_ca: created once, shared with the
# control plane), leaves signed by it, a fresh UNTRUSTED CA + leaf, and the
# token issuer's self-signed signing cert. Files: pki/reg-*.{crt,key}.
reg__pki_make() {
    local pki
    pki=$(reg__pki)
    mkdir -p "$pki"
    lab_ensure_ca || return 1
    lab_issue_cert reg-local "pullfix lab registry" IP:127.0.0.1 DNS:localhost \
        "DNS:$REG_INTERNAL_HOST" || return 1
    lab_issue_cert reg-hubstub "pullfix lab docker hub stub" IP:127.0.0.1 DNS:localhost \
        DNS:docker.io DNS:registry-1.docker.io DNS:index.docker.io DNS:auth.docker.io || return 1
    lab_issue_cert reg-ecr "pullfix lab ecr registry" IP:127.0.0.1 DNS:localhost "DNS:$REG_ECR_HOST" || return 1
    reg__ca reg-untrusted-ca "pullfix lab UNTRUSTED CA" || return 1
    reg__leaf reg-untrusted reg-untrusted-ca "IP:127.0.0.1,DNS:localhost" || return 1
    # Token signing cert: self-signed, no EKU (distribution 2.8 verifies the
    # x5c chain with ExtKeyUsageAny against rootcertbundle = this cert).
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 30 \
        -subj "/CN=$REG_TOKEN_ISSUER" -addext "keyUsage=critical,digitalSignature" \
        -keyout "$pki/reg-token-signing.key" -out "$pki/reg-token-signing.crt" 2>/dev/null ||
        lab_die "openssl: token signing cert" || return 1
    chmod 600 "$pki/reg-token-signing.key"
}

# reg__secret FILE: write a fresh random password to FILE (0600), echo it.
reg__secret() {
    local pw
    pw=$(openssl rand -hex 16) && [[ -n $pw ]] || return 1
    (umask 077 && printf '%s\n' "$pw" >"$1") || return 1
    echo "$pw"
}

# reg__config NAME PORT TLS(cert basename|"") AUTH(yaml block|""): write
# registries/NAME/config.yml with storage in registries/NAME/storage. No
# http.debug section: distribution 2.8 starts no debug server without one.
reg__config() {
    local name=$1 port=$2 tls=$3 auth=$4 dir pki
    dir=$(reg__dir)/$name
    pki=$(reg__pki)
    mkdir -p "$dir/storage" || return 1
    {
        cat <<EOF
version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
    instance: $name
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
  secret: $(openssl rand -hex 16)
  headers:
    X-Content-Type-Options: [nosniff]
EOF
        if [[ -n $tls ]]; then
            printf '  tls:\n    certificate: %s\n    key: %s\n' "$pki/$tls.crt" "$pki/$tls.key"
        fi
        [[ -n $auth ]] && printf '%s\n' "$auth"
        printf 'health:\n  storagedriver:\n    enabled: false\n'
    } >"$dir/config.yml"
}

# reg__htpasswd NAME USER PASSWORD: registries/NAME/htpasswd (bcrypt).
reg__htpasswd() {
    local f
    f=$(reg__dir)/$1/htpasswd
    mkdir -p "${f%/*}"
    (umask 077 && htpasswd -Bbn "$2" "$3" >"$f") || lab_die "htpasswd for $1"
}

# reg__port_free PORT: fail when something already listens on 127.0.0.1:PORT
# (a stale daemon would make lab_wait_port succeed for the wrong process).
reg__port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        lab_die "port $1 is already in use on 127.0.0.1 (stale lab? run: scripts/lab down)"
        return 1
    fi
}

reg__python() { command -v python3; }

# reg_up: start all registries and push the lab images. Restarts cleanly:
# any registry daemon of a previous run is stopped and its state removed
# first, so passwords are new on every `up`. On failure it stops what it
# started (logs stay in $PULLFIX_LAB_DIR/logs) and returns 1.
reg_up() {
    if ! reg__up; then
        reg_down_quiet
        return 1
    fi
}

reg__up() {
    local dir pki py port
    dir=$(reg__dir)
    pki=$(reg__pki)
    py=$(reg__python) || lab_die "python3 not found" || return 1
    reg_down_quiet
    for port in 100 101 102 103 104 105 106 107; do
        reg__port_free "$(lab_port $port)" || return 1
    done
    mkdir -p "$dir" "$PULLFIX_LAB_DIR/logs" "$PULLFIX_LAB_DIR/pids" || return 1
    # moto first: it takes the longest to come up, and the ECR registry's
    # htpasswd is made from the token it hands out.
    lab_start reg-moto "$py" -m moto.server -H 127.0.0.1 -p "$(lab_port 105)" || return 1
    reg__pki_make || return 1

    local basic_pw
    basic_pw=$(reg__secret "$dir/basic.password") || return 1
    reg__secret "$dir/token.password" >/dev/null || return 1
    reg__htpasswd basic pullfix "$basic_pw" || return 1

    reg__config basic "$(lab_port 100)" reg-local "$(printf 'auth:\n  htpasswd:\n    realm: pullfix-lab-registry\n    path: %s' "$dir/basic/htpasswd")" || return 1
    reg__config token "$(lab_port 101)" reg-local "$(printf 'auth:\n  token:\n    realm: https://127.0.0.1:%s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s' \
        "$(lab_port 102)" "$REG_TOKEN_SERVICE" "$REG_TOKEN_ISSUER" "$pki/reg-token-signing.crt")" || return 1
    reg__config anon "$(lab_port 103)" "" "" || return 1
    reg__config ecr "$(lab_port 106)" reg-ecr "$(printf 'auth:\n  htpasswd:\n    realm: https://%s/\n    path: %s' "$REG_ECR_HOST" "$dir/ecr/htpasswd")" || return 1
    reg__config untrusted "$(lab_port 107)" reg-untrusted "" || return 1

    local name
    for name in basic token anon untrusted; do
        lab_start "reg-$name" docker-registry serve "$dir/$name/config.yml" || return 1
    done
    lab_start reg-issuer "$py" -u "$REG_LAB_D/tokenissuer.py" --port "$(lab_port 102)" \
        --tls-cert "$pki/reg-local.crt" --tls-key "$pki/reg-local.key" \
        --signing-cert "$pki/reg-token-signing.crt" --signing-key "$pki/reg-token-signing.key" \
        --issuer "$REG_TOKEN_ISSUER" --service "$REG_TOKEN_SERVICE" \
        --user tokenuser --password-file "$dir/token.password" || return 1
    lab_start reg-hubstub "$py" -u "$REG_LAB_D/hubstub.py" --port "$(lab_port 104)" \
        --tls-cert "$pki/reg-hubstub.crt" --tls-key "$pki/reg-hubstub.key" || return 1

    # ECR pair: user AWS, password = what moto's GetAuthorizationToken
    # decodes to (moto 5.x: "123456789012-auth-token", expiresAt 2015-01-01).
    local log=$PULLFIX_LAB_DIR/logs/reg-push.log
    : >"$log"
    lab_wait_port 127.0.0.1 "$(lab_port 105)" 60 || return 1
    # moto may accept connections before it answers: a few tries.
    local try
    for try in 1 2 3 4 5; do
        if (umask 077 && "$py" "$REG_LAB_D/push.py" ecr-password --endpoint "http://127.0.0.1:$(lab_port 105)" \
            >"$dir/ecr.password" 2>>"$log"); then
            break
        fi
        if ((try == 5)); then
            lab_log "GetAuthorizationToken against moto failed 5 times; last lines of $log:"
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        sleep 2
    done
    reg__htpasswd ecr AWS "$(<"$dir/ecr.password")" || return 1
    lab_start reg-ecr docker-registry serve "$dir/ecr/config.yml" || return 1

    local -A daemon_of=([100]=reg-basic [101]=reg-token [102]=reg-issuer [103]=reg-anon [104]=reg-hubstub [106]=reg-ecr [107]=reg-untrusted)
    for port in 100 101 102 103 104 106 107; do
        if ! lab_wait_port 127.0.0.1 "$(lab_port $port)" 90; then
            lab_log "${daemon_of[$port]} is not listening; last lines of its log:"
            tail -n 20 "$PULLFIX_LAB_DIR/logs/${daemon_of[$port]}.log" >&2 || true
            return 1
        fi
    done

    # Pushes run in parallel, one log each, appended to reg-push.log.
    local push=("$py" "$REG_LAB_D/push.py" registry) pids=() rc=0 i
    "${push[@]}" --url "https://127.0.0.1:$(lab_port 100)" --ca "$pki/ca.crt" \
        --user pullfix --password-file "$dir/basic.password" >"$log.1" 2>&1 &
    pids+=($!)
    "${push[@]}" --url "https://127.0.0.1:$(lab_port 101)" --ca "$pki/ca.crt" \
        --user tokenuser --password-file "$dir/token.password" >"$log.2" 2>&1 &
    pids+=($!)
    "${push[@]}" --url "http://127.0.0.1:$(lab_port 103)" >"$log.3" 2>&1 &
    pids+=($!)
    "${push[@]}" --url "https://127.0.0.1:$(lab_port 106)" --ca "$pki/ca.crt" \
        --user AWS --password-file "$dir/ecr.password" >"$log.4" 2>&1 &
    pids+=($!)
    "${push[@]}" --url "https://127.0.0.1:$(lab_port 107)" --ca "$pki/reg-untrusted-ca.crt" >"$log.5" 2>&1 &
    pids+=($!)
    "$py" "$REG_LAB_D/push.py" ecr --endpoint "http://127.0.0.1:$(lab_port 105)" >"$log.6" 2>&1 &
    pids+=($!)
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || rc=1
        cat "$log.$((i + 1))" >>"$log"
        rm -f "$log.$((i + 1))"
    done
    if ((rc != 0)); then
        lab_log "pushing images failed; last lines of $log:"
        tail -n 20 "$log" >&2
        return 1
    fi

    lab_log "registry +100 https://127.0.0.1:$(lab_port 100) TLS+Basic (pullfix)"
    lab_log "registry +101 https://127.0.0.1:$(lab_port 101) TLS+token (issuer https://127.0.0.1:$(lab_port 102)/token, tokenuser)"
    lab_log "registry +103 http://127.0.0.1:$(lab_port 103) plain HTTP, anonymous"
    lab_log "registry +104 https://127.0.0.1:$(lab_port 104) Docker Hub stub (429 for library/*)"
    lab_log "registry +105 http://127.0.0.1:$(lab_port 105) moto ECR API (team/checkout, team/worker)"
    lab_log "registry +106 https://127.0.0.1:$(lab_port 106) TLS+Basic (AWS), ECR pair ($REG_ECR_HOST)"
    lab_log "registry +107 https://127.0.0.1:$(lab_port 107) TLS from an untrusted CA, anonymous"
}

# reg_down_quiet: stop the registry daemons and remove their state; keeps
# pki/ca.* (possibly shared with the control plane).
reg_down_quiet() {
    lab_stop "${REG_DAEMONS[@]}"
    rm -rf "$(reg__dir)"
    local pki
    pki=$(reg__pki)
    rm -f "$pki"/reg-{local,hubstub,ecr,untrusted,untrusted-ca,token-signing}.{crt,key}
}

# reg_down: stop every registry daemon (only ours: other lab daemons keep
# running) and remove registry state. Safe to call when nothing runs.
reg_down() {
    reg_down_quiet
    lab_log "registries stopped"
}

# reg__export NAME VALUE: one export line, value in single quotes (values
# never contain one), so the line is both shell and easy to parse.
reg__export() {
    [[ $2 != *"'"* ]] || lab_die "reg_env: quote in value of $1" || return 1
    printf "export %s='%s'\n" "$1" "$2"
}

# reg_env: export lines for tests. Passwords are read from the files the
# last reg_up wrote (empty when the lab is down).
reg_env() {
    local dir basic_pw="" token_pw=""
    dir=$(reg__dir)
    [[ -r $dir/basic.password ]] && basic_pw=$(<"$dir/basic.password")
    [[ -r $dir/token.password ]] && token_pw=$(<"$dir/token.password")
    reg__export PULLFIX_LAB_CA "$(reg__pki)/ca.crt"
    reg__export PULLFIX_LAB_REGISTRY "127.0.0.1:$(lab_port 100)"
    reg__export PULLFIX_LAB_REGISTRY_USER pullfix
    reg__export PULLFIX_LAB_REGISTRY_PASSWORD "$basic_pw"
    reg__export PULLFIX_LAB_TOKEN_REGISTRY "127.0.0.1:$(lab_port 101)"
    reg__export PULLFIX_LAB_TOKEN_ISSUER "https://127.0.0.1:$(lab_port 102)/token"
    reg__export PULLFIX_LAB_TOKEN_USER tokenuser
    reg__export PULLFIX_LAB_TOKEN_PASSWORD "$token_pw"
    reg__export PULLFIX_LAB_ANON_REGISTRY "127.0.0.1:$(lab_port 103)"
    reg__export PULLFIX_LAB_HUB_STUB "127.0.0.1:$(lab_port 104)"
    reg__export PULLFIX_LAB_ECR_REGISTRY "127.0.0.1:$(lab_port 106)"
    reg__export PULLFIX_LAB_UNTRUSTED_REGISTRY "127.0.0.1:$(lab_port 107)"
    local hub ecr aliases
    hub="127.0.0.1:$(lab_port 104)"
    ecr="127.0.0.1:$(lab_port 106)"
    aliases="docker.io=$hub,registry-1.docker.io=$hub,index.docker.io=$hub,auth.docker.io=$hub"
    aliases+=",$REG_ECR_HOST=$ecr,registry.unreachable.example=127.0.0.1:$(lab_port 199)"
    aliases+=",$REG_INTERNAL_HOST=127.0.0.1:$(lab_port 100)"
    reg__export PULLFIX_LAB_HOST_ALIASES "$aliases"
    reg__export PULLFIX_LAB_INTERNAL_REGISTRY "$REG_INTERNAL_HOST"
    reg__export AWS_ENDPOINT_URL "http://127.0.0.1:$(lab_port 105)"
    reg__export AWS_ACCESS_KEY_ID testing
    reg__export AWS_SECRET_ACCESS_KEY testing
    reg__export AWS_REGION us-east-1
    reg__export AWS_DEFAULT_REGION us-east-1
}
