# shellcheck shell=bash
# shellcheck disable=SC2015 # `a && b || fail` is meant: fail if either fails
# scripts/lab.d/control-plane.sh: build and run a real Kubernetes control
# plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) on
# 127.0.0.1, from Debian's packages only. Sourced after common.sh and
# install.sh (lab_install_control_plane must have run). The recipe is the
# one in shared/notes/control-plane.md; docs/lab-contract.md says which
# ports, identities and files the rest of the lab relies on.

CP_GO=/usr/lib/go-1.19/bin/go
# kubelet: the lab's real node (scripts/lab.d/realnode.sh); pause, built
# with gcc from build/pause/linux/pause.c, is that node's sandbox image and
# the entrypoint of the lab's images.
CP_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
# Upstream commit and build date of each Kubernetes release we may build
# (only for the version string that `kubectl version` shows; Debian's own
# kubectl carries the same commit, with gitTreeState "archive").
declare -gA CP_GIT_COMMITS=([1.20.2]=faecb196815e248d3ecfb03c680a4507229c2a56)
declare -gA CP_BUILD_DATES=([1.20.2]=2021-01-13T13:20:00Z)

# ---------------------------------------------------------------- build --

# cp_source_version: echo the Debian version of the `kubernetes` source
# package that `apt-get source` would fetch (e.g. 1.20.5+really1.20.2-1.1+deb12u1).
# PULLFIX_K8S_SOURCE_VERSION overrides. Without a source index, falls back
# to a version already built in the cache (the last in sort order).
cp_source_version() {
    if [[ -n ${PULLFIX_K8S_SOURCE_VERSION:-} ]]; then
        echo "$PULLFIX_K8S_SOURCE_VERSION"
        return 0
    fi
    local out v=
    out=$(cd /tmp && apt-get source --print-uris kubernetes 2>/dev/null || true)
    v=$(sed -n "s/^'[^']*' kubernetes_\([^ ]*\)\.dsc .*/\1/p" <<<"$out" | head -n 1)
    if [[ -z $v ]]; then
        local stamp
        for stamp in "$PULLFIX_CACHE"/kubernetes-*/bin/.stamp; do
            [[ -e $stamp ]] || continue
            v=${stamp#"$PULLFIX_CACHE"/kubernetes-}
            v=${v%/bin/.stamp}
        done
    fi
    [[ -n $v ]] || { lab_die "cannot tell the kubernetes source version (no deb-src index? run lab_install_control_plane)"; return 1; }
    echo "$v"
}

# cp_bin_dir: echo the directory holding the built binaries (it may not
# exist yet).
cp_bin_dir() {
    local v
    v=$(cp_source_version) || return 1
    echo "$PULLFIX_CACHE/kubernetes-$v/bin"
}

# cp_built DIR: 0 when DIR has the binaries, pause and the stamp.
cp_built() {
    local dir=$1 b
    [[ -e $dir/.stamp ]] || return 1
    for b in "${CP_BINARIES[@]}" pause; do
        [[ -x $dir/$b ]] || return 1
    done
}

# cp_build: make sure kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet and pause are built from Debian's kubernetes source package into
# $PULLFIX_CACHE/kubernetes-<source version>/bin/ (with a .stamp written
# last). Returns at once when they are. Serialised by flock on
# $PULLFIX_CACHE/build.lock, so concurrent runs build once. Build output
# goes to $PULLFIX_CACHE/build.log; GOCACHE is $PULLFIX_CACHE/gocache.
cp_build() {
    local v bindir
    v=$(cp_source_version) || return 1
    bindir="$PULLFIX_CACHE/kubernetes-$v/bin"
    cp_built "$bindir" && return 0
    mkdir -p "$PULLFIX_CACHE"
    local lock="$PULLFIX_CACHE/build.lock" rc=0
    (
        if ! flock -n 9; then
            lab_log "another build holds $lock; waiting for it"
            flock -w 3600 9 || { lab_die "timed out waiting for $lock"; exit 1; }
        fi
        # Someone else may have finished it while we waited.
        cp_built "$bindir" && exit 0
        _cp_build_locked "$v" "$bindir"
    ) 9>"$lock" || rc=$?
    return "$rc"
}

# _cp_build_locked VERSION BINDIR: the build itself (lock held).
_cp_build_locked() {
    local v=$1 bindir=$2
    local top="$PULLFIX_CACHE/kubernetes-$v"
    local srcdir="$PULLFIX_CACHE/src"
    local log="$PULLFIX_CACHE/build.log"
    local gopath="$top/gopath"
    local kroot="$gopath/src/k8s.io/kubernetes"
    local start=$SECONDS
    : >"$log"
    lab_log "building Kubernetes control plane from Debian source $v (log: $log)"

    # 1. Source tarball (only the upstream tarball: Debian's patches touch
    #    kubectl's printers only).
    mkdir -p "$srcdir"
    local orig
    orig=$(compgen -G "$srcdir/kubernetes_${v%-*}.orig.tar.*" | head -n 1 || true)
    if [[ -z $orig ]]; then
        lab_log "  downloading source package"
        (cd "$srcdir" && apt-get source --download-only "kubernetes=$v") >>"$log" 2>&1 ||
            { lab_die "apt-get source failed; see $log"; return 1; }
        orig=$(compgen -G "$srcdir/kubernetes_${v%-*}.orig.tar.*" | head -n 1 || true)
        [[ -n $orig ]] || { lab_die "no orig tarball for $v in $srcdir"; return 1; }
    fi

    # 2. Fresh tree at $GOPATH/src/k8s.io/kubernetes (GOPATH mode: module
    #    mode fails on go.mod/vendor consistency under Go 1.19).
    lab_log "  unpacking $(basename "$orig")"
    rm -rf "$gopath"
    mkdir -p "$kroot" || return 1
    tar -xf "$orig" -C "$kroot" --strip-components=1 >>"$log" 2>&1 ||
        { lab_die "unpacking $orig failed; see $log"; return 1; }
    local upstream
    upstream=$(tar -tf "$orig" 2>/dev/null | head -n 1 || true)
    upstream=${upstream%%/*}
    upstream=${upstream#kubernetes-}
    [[ $upstream =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] ||
        { lab_die "cannot tell the upstream version from $orig ($upstream)"; return 1; }
    local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}

    # 3. reflect2 1.0.1 (vendored) crashes under Go >= 1.18 (SIGSEGV in
    #    aeshashbody soon after the apiserver starts): use Debian's 1.0.2.
    local r2=/usr/share/gocode/src/github.com/modern-go/reflect2
    local vr2="$kroot/vendor/github.com/modern-go/reflect2"
    [[ -e $r2/reflect2.go ]] || { lab_die "$r2 missing (golang-github-modern-go-reflect2-dev)"; return 1; }
    rm -rf "$vr2" && mkdir -p "$vr2" && cp -a "$r2"/. "$vr2/" &&
        rm -rf "$vr2"/*_test.go "$vr2/tests" ||
        { lab_die "replacing vendored reflect2 failed"; return 1; }

    # shellcheck disable=SC2030,SC2031
    _cp_go() {
        (cd "$kroot" && env GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOPROXY=off \
            GOCACHE="$PULLFIX_CACHE/gocache" CGO_ENABLED=0 GOTOOLCHAIN=local \
            PATH="/usr/lib/go-1.19/bin:$PATH" "$@")
    }

    # 4. OpenAPI definitions the Makefile would generate
    #    (build/root/Makefile.generated_files is the reference).
    lab_log "  generating OpenAPI definitions"
    _cp_go "$CP_GO" build -o "$top/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen >>"$log" 2>&1 ||
        { lab_die "building openapi-gen failed; see $log"; return 1; }
    local tagdirs
    # -R, not -r: vendor/k8s.io/* are symlinks into staging/.
    tagdirs=$(cd "$kroot" && grep -R -l --include='*.go' -E '^// *\+k8s:openapi-gen=' pkg cmd plugin vendor/k8s.io 2>/dev/null |
        xargs -n1 dirname | LC_ALL=C sort -u) || true
    [[ -n $tagdirs ]] || { lab_die "found no +k8s:openapi-gen tags"; return 1; }
    local apimachinery='^vendor/k8s\.io/apimachinery/pkg/(apis/meta/v1|runtime|version)(/|$)'
    local kube_dirs agg_dirs apiext_dirs
    kube_dirs=$(grep -Ev '^vendor/k8s\.io/(code-generator|sample-apiserver)(/|$)' <<<"$tagdirs" || true)
    agg_dirs=$(grep -E "$apimachinery|^vendor/k8s\.io/kube-aggregator(/|\$)" <<<"$tagdirs" || true)
    # Upstream's Makefile filters apiextensions inputs on
    # `vendor/k8s.io/apiextensions/%`, which matches nothing: its definitions
    # cover only apimachinery and autoscaling/v1. Same here, so every
    # violation report equals upstream's api/api-rules/*.list.
    apiext_dirs=$(grep -E "$apimachinery|^vendor/k8s\.io/api/autoscaling/v1\$" <<<"$tagdirs" || true)
    _cp_openapi() { # OUTPUT_PKG DIRS NAME
        local inputs
        # shellcheck disable=SC2001
        inputs=$(sed 's|^|k8s.io/kubernetes/|' <<<"$2" | paste -sd, -)
        _cp_go "$top/openapi-gen" -i "$inputs" -p "k8s.io/kubernetes/$1" -O zz_generated.openapi \
            -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
            -r "$top/$3_violations.report" >>"$log" 2>&1 ||
            { lab_die "openapi-gen for $1 failed; see $log"; return 1; }
        [[ -s $kroot/$1/zz_generated.openapi.go ]] ||
            { lab_die "openapi-gen wrote no $1/zz_generated.openapi.go"; return 1; }
    }
    _cp_openapi pkg/generated/openapi "$kube_dirs" kube || return 1
    _cp_openapi vendor/k8s.io/kube-aggregator/pkg/generated/openapi "$agg_dirs" aggregator || return 1
    _cp_openapi vendor/k8s.io/apiextensions-apiserver/pkg/generated/openapi "$apiext_dirs" apiextensions || return 1

    # 5. The binaries, with the version variables kubectl version shows.
    local pkg ldflags=-s\ -w
    for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=v$upstream -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitCommit=${CP_GIT_COMMITS[$upstream]:-} -X $pkg.gitTreeState=archive"
        ldflags+=" -X $pkg.buildDate=${CP_BUILD_DATES[$upstream]:-1970-01-01T00:00:00Z}"
    done
    lab_log "  compiling ${CP_BINARIES[*]} (about 10 min cold on 2 cores)"
    local out="$top/bin.new"
    rm -rf "$out" && mkdir -p "$out" || return 1
    local b targets=()
    for b in "${CP_BINARIES[@]}"; do targets+=("./cmd/$b"); done
    _cp_go "$CP_GO" build -o "$out/" -ldflags "$ldflags" "${targets[@]}" >>"$log" 2>&1 ||
        { lab_die "go build failed; see $log"; tail -n 20 "$log" >&2; return 1; }
    for b in "${CP_BINARIES[@]}"; do
        [[ -x $out/$b ]] || { lab_die "go build produced no $b"; return 1; }
    done
    # The pause container, static, as upstream's build/pause/Makefile does.
    gcc -Os -static -DVERSION="v$upstream-pullfix" -o "$out/pause" "$kroot/build/pause/linux/pause.c" >>"$log" 2>&1 &&
        strip "$out/pause" ||
        { lab_die "building pause failed; see $log"; return 1; }
    "$out/kube-apiserver" --version >>"$log" 2>&1 || true
    rm -rf "$bindir" && mv "$out" "$bindir" &&
        printf 'source %s\nupstream v%s\nbuilt %s\n' "$v" "$upstream" "$(date -u +%FT%TZ)" >"$bindir/.stamp" ||
        { lab_die "installing the binaries into $bindir failed"; return 1; }
    # The unpacked tree is ~1 GB; the tarball and GOCACHE make a rebuild cheap.
    rm -rf "$gopath" "$top/openapi-gen"
    lab_log "  built in $((SECONDS - start)) s: $bindir"
}

# ------------------------------------------------------------------ run --

CP_DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

cp_etcd_port() { lab_port 1; }
cp_etcd_peer_port() { lab_port 2; }
cp_apiserver_port() { lab_port 43; }
cp_apiserver_url() { echo "https://127.0.0.1:$(cp_apiserver_port)"; }

# cp_write_kubeconfig FILE USER TOKEN CONTEXT: a kubeconfig for the lab
# apiserver with a bearer token. The lab CA is embedded
# (certificate-authority-data), so the file stays valid when copied.
cp_write_kubeconfig() {
    local file=$1 user=$2 token=$3 context=$4 ca
    ca=$(base64 -w0 <"$PULLFIX_LAB_DIR/pki/ca.crt")
    cat >"$file.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: pullfix-lab
  cluster:
    server: $(cp_apiserver_url)
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: $context
  context:
    cluster: pullfix-lab
    user: $user
    namespace: default
current-context: $context
KC
    chmod 600 "$file.tmp"
    mv "$file.tmp" "$file"
}

# cp_token USER: the bearer token of USER from tokens.csv.
cp_token() {
    awk -F, -v u="$1" '$2 == u { print $1; exit }' "$PULLFIX_LAB_DIR/tokens.csv"
}

# cp_wait_readyz SECONDS: poll the apiserver's /readyz with the admin token.
cp_wait_readyz() {
    local secs=$1 deadline token out=
    deadline=$((SECONDS + secs))
    token=$(cp_token lab-admin)
    while :; do
        out=$(curl -fsS --max-time 5 --cacert "$PULLFIX_LAB_DIR/pki/ca.crt" \
            -H "Authorization: Bearer $token" "$(cp_apiserver_url)/readyz" 2>&1) && [[ $out == ok ]] && return 0
        if ! lab_alive kube-apiserver; then
            lab_log "kube-apiserver died; last lines of its log:"
            tail -n 30 "$PULLFIX_LAB_DIR/logs/kube-apiserver.log" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            lab_log "kube-apiserver not ready after ${secs}s: $out"
            return 1
        fi
        sleep 0.3
    done
}

# cp_kubectl ARGS...: kubectl as lab-admin, quiet unless it fails.
cp_kubectl() {
    kubectl --kubeconfig "$PULLFIX_LAB_DIR/kubeconfig" "$@"
}

# cp_rbac_manifest: the lab's ClusterRoles and ClusterRoleBindings
# (docs/lab-contract.md, "Identities").
cp_rbac_manifest() {
    local read='["get", "list", "watch"]'
    local common="
- apiGroups: [\"\"]
  resources: [pods, events, serviceaccounts, namespaces, nodes]
  verbs: $read
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: $read
- apiGroups: [apps]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  verbs: $read
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: $read"
    cat <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pullfix-lab-oncall
rules:$common
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pullfix-lab-secrets-reader
rules:$common
- apiGroups: [""]
  resources: [secrets]
  verbs: $read
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pullfix-lab-oncall
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pullfix-lab-oncall
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: lab:oncall
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pullfix-lab-secrets-reader
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pullfix-lab-secrets-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: lab:secrets-reader
YAML
}

# cp_up: start etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler on 127.0.0.1 from the binaries cp_build made, with fresh
# etcd data, and return once:
#   - /readyz answers ok to the admin token,
#   - the controller-manager works (namespace `default` has its `default`
#     ServiceAccount),
#   - the RBAC objects of the contract are applied,
#   - kubeconfig, kubeconfig-oncall, kubeconfig-secrets-reader and
#     kubeconfig-kubelet exist in $PULLFIX_LAB_DIR.
# Fails (non-zero, with the relevant log lines on stderr) otherwise.
cp_up() {
    local D=$PULLFIX_LAB_DIR bindir start=$SECONDS name
    bindir=$(cp_bin_dir) || return 1
    cp_built "$bindir" || { lab_die "control plane binaries missing in $bindir: run cp_build"; return 1; }
    for name in "${CP_DAEMONS[@]}"; do
        if lab_alive "$name"; then
            lab_die "$name already running (pid $(cat "$D/pids/$name.pid")); run cp_down first"
            return 1
        fi
    done
    local p
    for p in "$(cp_etcd_port)" "$(cp_etcd_peer_port)" "$(cp_apiserver_port)"; do
        if lab_port_in_use "$p"; then
            lab_die "port 127.0.0.1:$p is in use (a lab left running? PULLFIX_LAB_PORT_BASE=$PULLFIX_LAB_PORT_BASE)"
            return 1
        fi
    done
    # Every cp_up starts from an empty cluster and fresh logs.
    rm -rf "$D/etcd" || return 1
    mkdir -p "$D"/{pki,etcd,logs,pids} || return 1
    chmod 700 "$D/etcd"
    for name in "${CP_DAEMONS[@]}"; do
        : >"$D/logs/$name.log"
    done

    # --- credentials -----------------------------------------------------
    lab_ensure_ca || return 1
    lab_issue_cert apiserver kube-apiserver \
        IP:127.0.0.1 DNS:localhost IP:10.0.0.1 DNS:kubernetes DNS:kubernetes.default \
        DNS:kubernetes.default.svc DNS:kubernetes.default.svc.cluster.local || return 1
    if [[ ! -s $D/pki/sa.key ]]; then
        openssl genrsa -out "$D/pki/sa.key" 2048 2>/dev/null &&
            openssl rsa -in "$D/pki/sa.key" -pubout -out "$D/pki/sa.pub" 2>/dev/null ||
            { lab_die "creating the service account key pair failed"; return 1; }
        chmod 600 "$D/pki/sa.key"
    fi
    # token,user,uid,"groups". The four identities of the contract, plus
    # one each for the controller-manager and the scheduler so that their
    # requests are told apart from the admin's in the audit log.
    {
        echo "$(openssl rand -hex 16),lab-admin,lab-admin,\"system:masters\""
        echo "$(openssl rand -hex 16),oncall,oncall,\"lab:oncall\""
        echo "$(openssl rand -hex 16),secrets-reader,secrets-reader,\"lab:secrets-reader\""
        echo "$(openssl rand -hex 16),lab-kubelet,lab-kubelet,\"system:masters\""
        echo "$(openssl rand -hex 16),system:kube-controller-manager,system:kube-controller-manager,\"system:masters\""
        echo "$(openssl rand -hex 16),system:kube-scheduler,system:kube-scheduler,\"system:masters\""
    } >"$D/tokens.csv"
    chmod 600 "$D/tokens.csv"
    cp_write_kubeconfig "$D/kubeconfig" lab-admin "$(cp_token lab-admin)" pullfix-lab
    cp_write_kubeconfig "$D/kubeconfig-oncall" oncall "$(cp_token oncall)" pullfix-lab-oncall
    cp_write_kubeconfig "$D/kubeconfig-secrets-reader" secrets-reader "$(cp_token secrets-reader)" pullfix-lab-secrets-reader
    cp_write_kubeconfig "$D/kubeconfig-kubelet" lab-kubelet "$(cp_token lab-kubelet)" pullfix-lab-kubelet
    cp_write_kubeconfig "$D/kubeconfig-controller-manager" system:kube-controller-manager \
        "$(cp_token system:kube-controller-manager)" pullfix-lab-controller-manager
    cp_write_kubeconfig "$D/kubeconfig-scheduler" system:kube-scheduler \
        "$(cp_token system:kube-scheduler)" pullfix-lab-scheduler

    # Audit: one event per request and stage at level Metadata (user, verb,
    # resource, namespace, name, responseStatus). RequestReceived is
    # omitted, so a finished request is one ResponseComplete event (watches
    # also get a ResponseStarted one). Metadata has no request body, but the
    # query string is kept: a server-side dry run shows as `dryRun=All` in
    # requestURI (e.g. "/api/v1/namespaces/default/configmaps?dryRun=All&fieldManager=kubectl-create"),
    # which is how "this run wrote nothing" tells a dry run from a write.
    cat >"$D/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
YAML
    : >"$D/audit.log"

    # --- etcd --------------------------------------------------------------
    local ep pp
    ep=$(cp_etcd_port)
    pp=$(cp_etcd_peer_port)
    lab_log "starting etcd on 127.0.0.1:$ep"
    lab_start etcd etcd --name pullfix-lab --data-dir "$D/etcd" \
        --listen-client-urls "http://127.0.0.1:$ep" --advertise-client-urls "http://127.0.0.1:$ep" \
        --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --initial-cluster "pullfix-lab=http://127.0.0.1:$pp" --initial-cluster-state new \
        --logger zap --log-outputs stderr || return 1
    local deadline=$((SECONDS + 30))
    until [[ $(curl -fsS --max-time 2 "http://127.0.0.1:$ep/health" 2>/dev/null || true) == *'"health":"true"'* ]]; do
        if ! lab_alive etcd || ((SECONDS >= deadline)); then
            lab_die "etcd not healthy; last lines of $D/logs/etcd.log:"
            tail -n 20 "$D/logs/etcd.log" >&2 || true
            return 1
        fi
        sleep 0.2
    done

    # --- kube-apiserver ----------------------------------------------------
    local ap
    ap=$(cp_apiserver_port)
    lab_log "starting kube-apiserver on https://127.0.0.1:$ap"
    lab_start kube-apiserver "$bindir/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ep" \
        --bind-address 127.0.0.1 --secure-port "$ap" --insecure-port 0 \
        --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
        --cert-dir "$D/pki" --tls-cert-file "$D/pki/apiserver.crt" --tls-private-key-file "$D/pki/apiserver.key" \
        --token-auth-file "$D/tokens.csv" --authorization-mode RBAC \
        --service-account-issuer https://kubernetes.default.svc \
        --service-account-key-file "$D/pki/sa.pub" --service-account-signing-key-file "$D/pki/sa.key" \
        --service-cluster-ip-range 10.0.0.0/24 \
        --feature-gates BoundServiceAccountTokenVolume=true \
        --audit-policy-file "$D/audit-policy.yaml" --audit-log-path "$D/audit.log" \
        --audit-log-mode blocking --audit-log-format json || return 1
    cp_wait_readyz 90 || return 1

    # --- controller-manager and scheduler ----------------------------------
    lab_log "starting kube-controller-manager and kube-scheduler"
    lab_start kube-controller-manager "$bindir/kube-controller-manager" \
        --kubeconfig "$D/kubeconfig-controller-manager" --leader-elect=false \
        --controllers '*,-serviceaccount-token,-nodeipam' \
        --feature-gates BoundServiceAccountTokenVolume=true \
        --bind-address 127.0.0.1 --secure-port 0 --port 0 \
        --service-account-private-key-file "$D/pki/sa.key" --root-ca-file "$D/pki/ca.crt" || return 1
    lab_start kube-scheduler "$bindir/kube-scheduler" \
        --kubeconfig "$D/kubeconfig-scheduler" --leader-elect=false \
        --bind-address 127.0.0.1 --port 0 --secure-port 0 || return 1

    # --- RBAC -------------------------------------------------------------
    local out
    out=$(cp_rbac_manifest | cp_kubectl apply -f - 2>&1) ||
        { lab_die "applying RBAC failed: $out"; return 1; }

    # The serviceaccount controller creates `default` in every namespace:
    # seeing it in `default` proves the controller-manager is at work.
    deadline=$((SECONDS + 60))
    until cp_kubectl -n default get serviceaccount default >/dev/null 2>&1; do
        for name in kube-controller-manager kube-scheduler; do
            if ! lab_alive "$name"; then
                lab_die "$name died; last lines of $D/logs/$name.log:"
                tail -n 30 "$D/logs/$name.log" >&2 || true
                return 1
            fi
        done
        if ((SECONDS >= deadline)); then
            lab_die "no default ServiceAccount after 60 s; see $D/logs/kube-controller-manager.log"
            return 1
        fi
        sleep 0.3
    done
    lab_log "control plane up in $((SECONDS - start)) s: $(cp_apiserver_url)"
}

# cp_down: stop the control plane daemons (scheduler and controller-manager
# first, etcd last). Leaves $PULLFIX_LAB_DIR in place (scripts/lab removes it).
cp_down() {
    lab_stop kube-scheduler kube-controller-manager
    lab_stop kube-apiserver
    lab_stop etcd
}

# cp_env: the control plane's export lines (for `scripts/lab env`).
cp_env() {
    local D=$PULLFIX_LAB_DIR
    printf 'export KUBECONFIG=%q\n' "$D/kubeconfig"
    printf 'export PULLFIX_LAB_APISERVER=%q\n' "$(cp_apiserver_url)"
    printf 'export PULLFIX_LAB_AUDIT_LOG=%q\n' "$D/audit.log"
    printf 'export PULLFIX_LAB_KUBECONFIG_ONCALL=%q\n' "$D/kubeconfig-oncall"
    printf 'export PULLFIX_LAB_KUBECONFIG_SECRETS_READER=%q\n' "$D/kubeconfig-secrets-reader"
    printf 'export PULLFIX_LAB_KUBECONFIG_KUBELET=%q\n' "$D/kubeconfig-kubelet"
}
