# shellcheck shell=bash
# shellcheck disable=SC2015 # `a && b || fail` is meant: fail if either fails
# scripts/lab.d/realnode.sh: the lab's real node, `lab-real`: the kubelet
# built from Debian's kubernetes source (control-plane.sh) on Debian's
# containerd, runc and CNI plugins, pulling for real from the lab's
# registries. Sourced after common.sh, install.sh, control-plane.sh and
# registries.sh. Everything it makes lives under $PULLFIX_LAB_DIR/real
# (containerd's root and state, runc's state, network namespaces, the
# kubelet's root), on ports of the lab's own, and a bridge named after the
# lab's port base, so it never touches a system containerd or another lab;
# rn_down takes all of it away again (processes, mounts, interfaces).
#
# PULLFIX_LAB_REAL_NODE=0 leaves the node out (lab_up says so, and so does
# `scripts/lab env`: PULLFIX_LAB_REAL_NODE=skipped, which the tests report).

RN_NODE=lab-real
RN_TAINT=lab.pullfix.dev/real=true:NoSchedule
RN_PAUSE_IMAGE=pullfix.lab/pause:3.4.1

# (`skipped` is what `scripts/lab env` exports for 0, read back by lab_up.)
rn_wanted() { [[ ${PULLFIX_LAB_REAL_NODE:-1} != 0 && ${PULLFIX_LAB_REAL_NODE:-1} != skipped ]]; }

rn_dir() { echo "$PULLFIX_LAB_DIR/real"; }
rn_socket() { echo "$(rn_dir)/containerd.sock"; }
# A Linux interface name (at most 15 bytes), one per lab.
rn_bridge() { echo "pfx$PULLFIX_LAB_PORT_BASE"; }
# 10.88.N.0/24, N from the port base: labs on other bases do not overlap.
rn_subnet() { echo "10.88.$(((PULLFIX_LAB_PORT_BASE / 100) % 256)).0/24"; }
rn_kubelet_port() { lab_port 150; }
rn_healthz_port() { lab_port 151; }

rn_ctr() { ctr --address "$(rn_socket)" --namespace k8s.io "$@"; }

# The static pause binary, which every runnable lab image starts
# (push.py reads PULLFIX_LAB_ENTRYPOINT): exported before the registries
# are filled, so the real node can run what they hold.
rn_export_entrypoint() {
    local bindir
    bindir=$(cp_bin_dir) || return 1
    [[ -x $bindir/pause ]] || { lab_die "no $bindir/pause (cp_build first)"; return 1; }
    export PULLFIX_LAB_ENTRYPOINT="$bindir/pause"
}

_rn_write_containerd_config() {
    local d=$1
    cat >"$d/containerd.toml" <<EOF
# The lab's real node. Own root, state, sockets and runc root, so a system
# containerd (if any) is never touched.
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd-ttrpc.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$RN_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  # No CAP_SYS_RESOURCE here: an oom_score_adj below containerd's own
  # (the pause container's -998) fails runc init with "can't get final
  # child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    # The same routing the lab hands to \`kubectl pullfix --registry-hosts\`.
    config_path = "$PULLFIX_LAB_DIR/registry-hosts"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "$d/runc"
EOF
    cat >"$d/net.d/10-pullfix-lab.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "pullfix-lab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$(rn_bridge)",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$(rn_subnet)"}]],
        "dataDir": "$d/cni-ipam"
      }
    }
  ]
}
EOF
}

_rn_write_kubelet_config() {
    local d=$1
    cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $(rn_kubelet_port)
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(rn_healthz_port)
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
# No kubepods hierarchy: the lab shares the machine's cgroups with others.
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
# The lab's disk is shared: never evict or garbage-collect images for it.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
volumePluginDir: $d/kubelet/volume-plugins
resolvConf: /etc/resolv.conf
# No cluster DNS runs; an address keeps the kubelet from warning on every
# pod (MissingClusterDNS). The lab's pods resolve nothing.
clusterDNS: ["10.96.0.10"]
clusterDomain: cluster.local
# Scenarios start many pulls at once: no "pull QPS exceeded" (default 5/s).
registryPullQPS: 0
featureGates:
  KubeletCredentialProviders: true
EOF
}

# rn_up: containerd, the pause image, CNI, the kubelet; waits until the
# node is Ready (90 s), else names the piece that failed with its log.
rn_up() {
    local d bindir start=$SECONDS
    d=$(rn_dir)
    bindir=$(cp_bin_dir) || return 1
    mkdir -p "$d"/{containerd/root,containerd/state,net.d,runc,cni-ipam,kubelet,provider} || return 1
    _rn_write_containerd_config "$d"
    _rn_write_kubelet_config "$d"
    lab_start containerd containerd --config "$d/containerd.toml" || return 1
    local i
    for ((i = 0; i < 100; i++)); do
        rn_ctr version >/dev/null 2>&1 && break
        if ! lab_alive containerd; then
            lab_die "containerd exited; last lines of $PULLFIX_LAB_DIR/logs/containerd.log:"
            tail -n 20 "$PULLFIX_LAB_DIR/logs/containerd.log" >&2
            return 1
        fi
        sleep 0.1
    done
    rn_ctr version >/dev/null 2>&1 ||
        { lab_die "containerd did not answer on $(rn_socket) in 10 s"; tail -n 20 "$PULLFIX_LAB_DIR/logs/containerd.log" >&2; return 1; }
    PULLFIX_LAB_ENTRYPOINT="$bindir/pause" python3 "$REG_LAB_D/push.py" archive \
        --name "$RN_PAUSE_IMAGE" --out "$d/pause.tar" >/dev/null &&
        rn_ctr images import "$d/pause.tar" >>"$PULLFIX_LAB_DIR/logs/containerd.log" 2>&1 ||
        { lab_die "importing the pause image into containerd failed"; return 1; }
    rn_write_provider "$d"
    lab_start kubelet-real "$bindir/kubelet" \
        --config "$d/kubelet.yaml" \
        --kubeconfig "$PULLFIX_LAB_DIR/kubeconfig-kubelet" \
        --container-runtime remote \
        --container-runtime-endpoint "unix://$(rn_socket)" \
        --runtime-request-timeout 2m \
        --root-dir "$d/kubelet" \
        --cert-dir "$d/kubelet/pki" \
        --hostname-override "$RN_NODE" \
        --pod-infra-container-image "$RN_PAUSE_IMAGE" \
        --register-with-taints "$RN_TAINT" \
        --node-labels "lab.pullfix.dev/real=true" \
        --image-credential-provider-config "$d/provider/config.yaml" \
        --image-credential-provider-bin-dir "$d/provider/bin" \
        --v 2 || return 1
    local deadline=$((SECONDS + 90)) ready=
    while ((SECONDS < deadline)); do
        ready=$(kubectl --kubeconfig "$PULLFIX_LAB_DIR/kubeconfig" get node "$RN_NODE" \
            -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
        [[ $ready == True ]] && break
        rn_check_alive || return 1
        sleep 0.5
    done
    if [[ $ready != True ]]; then
        lab_die "node $RN_NODE not Ready after 90 s"
        rn_status >&2
        return 1
    fi
    lab_log "real node $RN_NODE Ready in $((SECONDS - start)) s (kubelet $("$bindir/kubelet" --version 2>/dev/null | awk '{print $2}'), containerd $(containerd --version | awk '{print $3}'))"
}

# rn_check_alive: 0 when containerd and the kubelet both run; else names
# the one that died, with its log tail.
rn_check_alive() {
    local n
    for n in containerd kubelet-real; do
        if ! lab_alive "$n"; then
            lab_die "$n of node $RN_NODE is not running; last lines of $PULLFIX_LAB_DIR/logs/$n.log:"
            tail -n 20 "$PULLFIX_LAB_DIR/logs/$n.log" >&2 || true
            return 1
        fi
    done
}

# rn_status: one line per piece, and the log tail of any that is unhealthy.
rn_status() {
    local n healthz
    [[ -d $(rn_dir) ]] || { echo "real node: not part of this lab"; return 0; }
    for n in containerd kubelet-real; do
        if lab_alive "$n"; then
            echo "$n running (pid $(cat "$PULLFIX_LAB_DIR/pids/$n.pid"))"
        else
            echo "$n DEAD; last lines of $PULLFIX_LAB_DIR/logs/$n.log:"
            tail -n 15 "$PULLFIX_LAB_DIR/logs/$n.log" 2>/dev/null | sed 's/^/    /'
        fi
    done
    healthz=$(curl -s -m 2 "http://127.0.0.1:$(rn_healthz_port)/healthz" 2>/dev/null || true)
    if [[ $healthz == ok ]]; then
        echo "kubelet-real healthz ok"
    else
        echo "kubelet-real healthz: ${healthz:-no answer}; last lines of $PULLFIX_LAB_DIR/logs/kubelet-real.log:"
        tail -n 15 "$PULLFIX_LAB_DIR/logs/kubelet-real.log" 2>/dev/null | sed 's/^/    /'
    fi
}

# rn_down: the kubelet, every container (runc kill), the shims, containerd;
# then every mount under the node's directory, its network namespaces and
# the bridge, and the pod log directories the kubelet wrote in /var/log.
rn_down() {
    local d id m
    d=$(rn_dir)
    [[ -d $d ]] || return 0
    lab_stop kubelet-real
    if [[ -d $d/runc/k8s.io ]]; then
        for id in $(runc --root "$d/runc/k8s.io" list -q 2>/dev/null); do
            runc --root "$d/runc/k8s.io" kill -a "$id" KILL >/dev/null 2>&1 || true
        done
        sleep 0.2
        for id in $(runc --root "$d/runc/k8s.io" list -q 2>/dev/null); do
            runc --root "$d/runc/k8s.io" delete -f "$id" >/dev/null 2>&1 || true
        done
    fi
    # Shims are started by containerd with `-address <socket>`, in groups of
    # their own.
    pkill -KILL -f -- "containerd-shim-runc-v2 .*-address $(rn_socket)" 2>/dev/null || true
    lab_stop containerd
    # Mounts (overlay rootfs, shm, netns, the kubelet's volumes), deepest first.
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v p="$d/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r)
    ip link del "$(rn_bridge)" >/dev/null 2>&1 || true
    local uid
    for uid in "$d"/kubelet/pods/*; do
        [[ -d $uid ]] || continue
        uid=${uid##*/}
        rm -rf /var/log/pods/*_"$uid"
    done
    find /var/log/containers -xtype l -delete 2>/dev/null || true
}

# rn_leftovers: what rn_down should have removed and did not (empty when
# clean): processes, mounts, the bridge.
rn_leftovers() {
    local d
    d=$(rn_dir)
    pgrep -af -- "$d/" 2>/dev/null | grep -v pgrep || true
    awk -v p="$d/" 'index($2, p) == 1 {print "mount " $2}' /proc/self/mounts
    ip link show "$(rn_bridge)" >/dev/null 2>&1 && echo "interface $(rn_bridge)"
    return 0
}

# rn_write_provider DIR: the node's exec credential provider, in the role
# of EKS's ecr-credential-provider (kubelet's alpha
# KubeletCredentialProviders): for the lab's ECR host it asks the lab's AWS
# emulator for a token (GetAuthorizationToken) and hands it to the kubelet.
# What it does depends on the repository, so scenarios can run side by side:
#   team/worker    a token (the node identity may pull)
#   team/multi     AccessDeniedException (the node role lacks
#                  ecr:GetAuthorizationToken): exit 1
#   anything else  the AWS endpoint cannot be reached: exit 1 (so
#                  team/checkout pulls with its pod's secret alone, as the
#                  ecr-expired scenario needs)
# On exit 1 the kubelet logs the provider's error and pulls with what the
# pod's secrets give, else anonymously.
rn_write_provider() {
    local d=$1 py
    py=$(command -v python3) || { lab_die "python3 not on PATH"; return 1; }
    mkdir -p "$d/provider/bin"
    cat >"$d/provider/bin/ecr-credential-provider" <<EOF
#!$py
# The lab's stand-in for ecr-credential-provider (scripts/lab.d/realnode.sh).
import base64, json, sys
req = json.load(sys.stdin)
image = req.get("image", "")
host, _, rest = image.partition("/")
path = rest.split("@")[0]
last = path.rsplit("/", 1)[-1]
repo = path[: len(path) - len(last)] + last.split(":")[0]
def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)
if repo == "team/multi":
    fail("error getting authorization token: AccessDeniedException: User: "
         "arn:aws:sts::123456789012:assumed-role/lab-node-role/i-0pullfixlab is not authorized "
         "to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy "
         "allows the ecr:GetAuthorizationToken action")
endpoint = "http://127.0.0.1:$(lab_port 105)" if repo == "team/worker" else "http://127.0.0.1:$(lab_port 199)"
import boto3, botocore.config
try:
    ecr = boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=2))
    data = ecr.get_authorization_token()["authorizationData"][0]
except Exception as e:
    fail("error getting authorization token: %s" % e)
user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
json.dump({
    "apiVersion": "credentialprovider.kubelet.k8s.io/v1alpha1",
    "kind": "CredentialProviderResponse",
    "cacheKeyType": "Image",
    "cacheDuration": "1s",
    "auth": {host: {"username": user, "password": password}},
}, sys.stdout)
EOF
    chmod 755 "$d/provider/bin/ecr-credential-provider"
    cat >"$d/provider/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1alpha1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages:
      - "*.dkr.ecr.*.amazonaws.com"
    defaultCacheDuration: "1s"
    apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1
EOF
}
