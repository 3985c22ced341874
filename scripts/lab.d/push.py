#!/usr/bin/env python3
"""Push the lab's images with the distribution push API only (no docker,
no skopeo), or register them in moto's ECR.

  push.py registry --url https://127.0.0.1:36500 --ca ca.crt \
          [--user U --password-file F] [--image team/checkout:v2.1.0 ...]
  push.py ecr --endpoint http://127.0.0.1:36505 [--repo team/checkout ...]
  push.py ecr-password --endpoint http://127.0.0.1:36505   # AWS password
  push.py list            # ref, media type and digest of every lab image

Images (docs/lab-contract.md): each is a tiny config blob (distinct per tag,
so digests differ) + one gzip'd tar layer + a schema-2 manifest;
team/multi:1.0 is an OCI image index listing only linux/amd64 and
team/armonly:1.0 one listing only linux/arm64. Content is deterministic: the
same ref has the same digest in every registry and run.

With $PULLFIX_LAB_ENTRYPOINT naming a static binary (the lab's pause,
built from the Kubernetes source), the amd64 layers also carry it as
/pause and the config runs it, so the lab's real node can start the
images; every subcommand reads the same variable, so digests agree.

  push.py archive --name pullfix.lab/pause:3.2 --out pause.tar
          # an OCI layout archive of the entrypoint alone, for `ctr images import`

Registry auth: Basic, bearer token (the token dance: 401 challenge ->
GET realm?service=&scope=repository:NAME:pull,push with Basic credentials)
and plain HTTP (http:// URL). TLS is verified against --ca.
"""

import argparse
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import ssl
import sys
import tarfile
import urllib.parse

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# (repository, tag, kind); kind "index" = OCI index with linux/amd64 only,
# "index-arm64" = one with linux/arm64 only.
IMAGES = [
    ("team/checkout", "v2.1.0", "image"),
    ("team/checkout", "v2.0.3", "image"),
    ("team/checkout", "v2.1.1", "image"),
    ("team/checkout", "latest", "image"),
    ("team/worker", "1.4.2", "image"),
    ("team/multi", "1.0", "index"),
    ("team/armonly", "1.0", "index-arm64"),
    ("library/busybox", "1.36", "image"),
    # Behind faultproxy.py (+109): a layer cut off mid-download, a layer
    # that does not match its digest.
    ("faults/cut/app", "1.0", "image"),
    ("faults/corrupt/app", "1.0", "image"),
]
CREATED = "2024-01-01T00:00:00Z"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canon(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def entrypoint():
    """The static binary every runnable lab image starts, or None."""
    path = os.environ.get("PULLFIX_LAB_ENTRYPOINT")
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def build_layer(ref: str, binary=None, marker=True):
    """(gzip bytes, diff_id) of a one-layer tar; deterministic."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        if marker:
            content = ("pullfix lab image %s\n" % ref).encode()
            info = tarfile.TarInfo("etc/pullfix-lab-image")
            info.size, info.mtime, info.mode = len(content), 1704067200, 0o644
            tar.addfile(info, io.BytesIO(content))
        if binary is not None:
            info = tarfile.TarInfo("pause")
            info.size, info.mtime, info.mode = len(binary), 1704067200, 0o755
            tar.addfile(info, io.BytesIO(binary))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(tar_bytes)
    return gz.getvalue(), sha256(tar_bytes)


def build_single(repo, tag, oci=False, arch="amd64", binary=None, marker=True):
    """One manifest: returns {manifest, media_type, blobs: [(digest, bytes)]}."""
    ref = "%s:%s" % (repo, tag)
    if binary is None and arch == "amd64":
        binary = entrypoint()
    layer, diff_id = build_layer(ref, binary, marker)
    config = canon(
        {
            "architecture": arch,
            "os": "linux",
            "created": CREATED,
            # An Entrypoint, so a container's `args` (the init container's
            # `-v`: print the version and exit) reach the binary.
            "config": (
                {"Entrypoint": ["/pause"], "Labels": {"io.pullfix.lab.ref": ref}}
                if binary is not None
                else {"Cmd": ["/bin/true"], "Labels": {"io.pullfix.lab.ref": ref}}
            ),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "pullfix lab push.py"}],
        }
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config), "digest": sha256(config)},
        "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "size": len(layer), "digest": sha256(layer)}],
    }
    return {
        "manifest": canon(manifest),
        "media_type": manifest["mediaType"],
        "blobs": [(sha256(config), config), (sha256(layer), layer)],
    }


def build(repo, tag, kind):
    """List of manifests to PUT in order; the last one is tagged, the others
    are pushed by digest (children of an index)."""
    if kind == "image":
        img = build_single(repo, tag)
        img["tag"] = tag
        return [img]
    arch = "arm64" if kind == "index-arm64" else "amd64"
    child = build_single(repo, tag, oci=True, arch=arch)
    child["tag"] = None
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "size": len(child["manifest"]),
                "digest": sha256(child["manifest"]),
                "platform": {"architecture": arch, "os": "linux"},
            }
        ],
    }
    return [child, {"manifest": canon(index), "media_type": OCI_INDEX, "blobs": [], "tag": tag}]


def parse_challenge(header: str):
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class PushError(Exception):
    pass


class Registry:
    def __init__(self, url, ca=None, user=None, password=None):
        u = urllib.parse.urlsplit(url if "://" in url else "https://" + url)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        self.user, self.password = user, password
        self.auth = {}  # scope -> Authorization header value

    def _conn(self, scheme, netloc):
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=30)
        return http.client.HTTPSConnection(netloc, timeout=30, context=self.ctx)

    def _raw(self, method, url, body=None, headers=None):
        u = urllib.parse.urlsplit(url)
        conn = self._conn(u.scheme, u.netloc)
        try:
            path = u.path + ("?" + u.query if u.query else "")
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.headers, data
        finally:
            conn.close()

    def _basic(self):
        if self.user is None:
            return None
        return "Basic " + base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()

    def _authorize(self, challenge, scope):
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self.user is None:
                raise PushError("registry wants Basic credentials and none were given")
            return self._basic()
        if scheme == "bearer":
            q = {"service": params.get("service", "")}
            if scope:
                q["scope"] = scope
            url = params["realm"] + "?" + urllib.parse.urlencode(q)
            headers = {}
            if self.user is not None:
                headers["Authorization"] = self._basic()
            status, _, data = self._raw("GET", url, headers=headers)
            if status != 200:
                raise PushError("token request %s -> %d %s" % (url, status, data[:200]))
            body = json.loads(data)
            return "Bearer " + (body.get("token") or body["access_token"])
        raise PushError("unknown auth scheme in %r" % challenge)

    def request(self, method, path_or_url, repo=None, body=None, headers=None):
        """Request with auth retry. Returns (status, headers, body)."""
        url = path_or_url if "://" in path_or_url else "%s://%s%s" % (self.scheme, self.netloc, path_or_url)
        scope = "repository:%s:pull,push" % repo if repo else ""
        hdrs = dict(headers or {})
        if scope in self.auth:
            hdrs["Authorization"] = self.auth[scope]
        status, rh, data = self._raw(method, url, body, hdrs)
        if status == 401 and rh.get("WWW-Authenticate") and "Authorization" not in hdrs:
            self.auth[scope] = self._authorize(rh["WWW-Authenticate"], scope)
            hdrs["Authorization"] = self.auth[scope]
            status, rh, data = self._raw(method, url, body, hdrs)
        return status, rh, data

    def push_blob(self, repo, digest, data):
        status, _, _ = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), repo)
        if status == 200:
            return
        status, rh, body = self.request("POST", "/v2/%s/blobs/uploads/" % repo, repo, body=b"")
        if status != 202:
            raise PushError("POST upload %s -> %d %s" % (repo, status, body[:300]))
        loc = rh["Location"]
        if "://" not in loc:
            loc = "%s://%s%s" % (self.scheme, self.netloc, loc)
        loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)
        status, _, body = self.request(
            "PUT",
            loc,
            repo,
            body=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        if status != 201:
            raise PushError("PUT blob %s %s -> %d %s" % (repo, digest, status, body[:300]))

    def push_manifest(self, repo, ref, manifest, media_type):
        status, rh, body = self.request(
            "PUT", "/v2/%s/manifests/%s" % (repo, ref), repo, body=manifest, headers={"Content-Type": media_type}
        )
        if status != 201:
            raise PushError("PUT manifest %s:%s -> %d %s" % (repo, ref, status, body[:300]))
        return rh.get("Docker-Content-Digest")

    def push(self, repo, tag, kind):
        digest = None
        for m in build(repo, tag, kind):
            for d, data in m["blobs"]:
                self.push_blob(repo, d, data)
            ref = m["tag"] or sha256(m["manifest"])
            digest = self.push_manifest(repo, ref, m["manifest"], m["media_type"])
            if digest and digest != sha256(m["manifest"]):
                raise PushError("registry digest %s != local %s" % (digest, sha256(m["manifest"])))
        return sha256(build(repo, tag, kind)[-1]["manifest"])


def select(refs):
    if not refs:
        return IMAGES
    chosen = []
    for r in refs:
        hit = [i for i in IMAGES if "%s:%s" % (i[0], i[1]) == r]
        if not hit:
            sys.exit("push.py: %s is not a lab image" % r)
        chosen += hit
    return chosen


def cmd_registry(args):
    password = None
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().strip()
    elif args.user is not None:
        password = os.environ.get("PULLFIX_PUSH_PASSWORD", "")
    reg = Registry(args.url, args.ca, args.user, password)
    for repo, tag, kind in select(args.image):
        digest = reg.push(repo, tag, kind)
        print("pushed %s/%s:%s %s" % (reg.netloc, repo, tag, digest), flush=True)


def cmd_ecr(args):
    import boto3  # moto depends on boto3; imported here so `registry` needs only stdlib

    ecr = boto3.client(
        "ecr",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    for repo in args.repo:
        try:
            ecr.create_repository(repositoryName=repo)
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        for r, tag, kind in IMAGES:
            if r != repo:
                continue
            m = build(r, tag, kind)[-1]
            digest = sha256(m["manifest"])
            try:
                ecr.put_image(
                    repositoryName=repo,
                    imageManifest=m["manifest"].decode(),
                    imageManifestMediaType=m["media_type"],
                    imageTag=tag,
                    imageDigest=digest,
                )
            except ecr.exceptions.ImageAlreadyExistsException:
                pass
            print("ecr %s:%s %s" % (repo, tag, digest), flush=True)


def cmd_ecr_password(args):
    """Print the password half of moto's GetAuthorizationToken (user AWS)."""
    import boto3

    ecr = boto3.client(
        "ecr",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    if user != "AWS" or not password:
        sys.exit("push.py: unexpected ECR token for user %r" % user)
    print(password)


def cmd_archive(args):
    """An OCI layout tar holding one image: the entrypoint alone (the pause
    image a node's runtime imports instead of pulling)."""
    binary = entrypoint()
    if binary is None:
        sys.exit("push.py: archive needs $PULLFIX_LAB_ENTRYPOINT")
    repo, _, tag = args.name.rpartition(":")
    img = build_single(repo, tag, oci=True, binary=binary, marker=False)
    desc = {
        "mediaType": OCI_MANIFEST,
        "size": len(img["manifest"]),
        "digest": sha256(img["manifest"]),
        "annotations": {"io.containerd.image.name": args.name, "org.opencontainers.image.ref.name": tag},
    }
    files = [("oci-layout", canon({"imageLayoutVersion": "1.0.0"})), ("index.json", canon({"schemaVersion": 2, "manifests": [desc]}))]
    for d, data in img["blobs"] + [(sha256(img["manifest"]), img["manifest"])]:
        files.append(("blobs/sha256/" + d.split(":", 1)[1], data))
    with tarfile.open(args.out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ["blobs", "blobs/sha256"]:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1704067200
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1704067200, 0o644
            tar.addfile(info, io.BytesIO(data))
    print("%s %s" % (args.name, sha256(img["manifest"])))


def cmd_list(_args):
    for repo, tag, kind in IMAGES:
        m = build(repo, tag, kind)[-1]
        print("%s:%s %s %s" % (repo, tag, m["media_type"], sha256(m["manifest"])))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("registry", help="push to a registry over the distribution API")
    r.add_argument("--url", required=True, help="https://HOST:PORT or http://HOST:PORT")
    r.add_argument("--ca", help="CA bundle to verify TLS with")
    r.add_argument("--user")
    r.add_argument("--password-file", help="else $PULLFIX_PUSH_PASSWORD")
    r.add_argument("--image", action="append", help="repo:tag (default: all lab images)")
    r.set_defaults(func=cmd_registry)
    e = sub.add_parser("ecr", help="CreateRepository + PutImage in moto")
    e.add_argument("--endpoint", required=True)
    e.add_argument("--region", default="us-east-1")
    e.add_argument("--repo", action="append", default=None)
    e.set_defaults(func=cmd_ecr)
    t = sub.add_parser("ecr-password", help="print the password of moto's GetAuthorizationToken")
    t.add_argument("--endpoint", required=True)
    t.add_argument("--region", default="us-east-1")
    t.set_defaults(func=cmd_ecr_password)
    a = sub.add_parser("archive", help="write an OCI layout tar of the entrypoint image")
    a.add_argument("--name", required=True, help="the image name to import it as (repo:tag)")
    a.add_argument("--out", required=True)
    a.set_defaults(func=cmd_archive)
    l = sub.add_parser("list", help="print ref, media type and digest of each lab image")
    l.set_defaults(func=cmd_list)
    args = p.parse_args()
    if args.cmd == "ecr" and not args.repo:
        args.repo = ["team/checkout", "team/worker"]
    try:
        args.func(args)
    except (PushError, OSError, ssl.SSLError) as e:
        sys.exit("push.py: %s" % e)


if __name__ == "__main__":
    main()
