#!/usr/bin/env python3
"""Docker-Hub stand-in for the lab: only the behaviours a real registry
cannot produce (the pull rate limit) and the answers around them.

HTTPS (leaf with the docker.io SANs). Routes:

  GET  /v2/                         401 + Bearer challenge (200 "{}" when the
                                    request carries a Bearer token)
  GET  /token                       200, a dummy token, for any caller
  /v2/ratelimit-overall/...         429, empty body, no rate-limit headers
                                    (Hub's overall, per-IP request limit)
  /v2/library/<name>/manifests/<r>  429 TOOMANYREQUESTS + ratelimit-limit,
  (also tags/list, blobs)           ratelimit-remaining, docker-ratelimit-source,
                                    Retry-After
  /v2/<other repo>/...              401 UNAUTHORIZED + Bearer challenge with
                                    scope and error="insufficient_scope"
                                    (Hub's answer for a missing or private repo)

Each request line is logged to stdout.
"""

import argparse
import datetime
import json
import re
import secrets
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "registry.docker.io"
RATE_LIMIT_MESSAGE = (
    "You have reached your pull rate limit. You may increase the limit by "
    "authenticating and upgrading: https://www.docker.com/increase-rate-limit"
)
# /v2/<name>/(manifests|blobs)/<ref> or /v2/<name>/tags/list
REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests/[^/]+|blobs/[^/]+|tags/list)$")


class TLSServer(ThreadingHTTPServer):
    """Threaded HTTPS server; TLS handshake in the connection's thread."""

    daemon_threads = True

    def __init__(self, addr, handler, ctx):
        super().__init__(addr, handler)
        self.ctx = ctx

    def finish_request(self, request, client_address):
        request.settimeout(30)
        tls = self.ctx.wrap_socket(request, server_side=True)
        super().finish_request(tls, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        sys.stdout.write("%s connection error: %r\n" % (client_address[0], exc))
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pullfix-lab-hubstub"
    sys_version = ""

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def realm(self):
        return "https://127.0.0.1:%d/token" % self.server.server_address[1]

    def route(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token":
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            token = "pullfix-lab-hubstub-" + secrets.token_hex(16)
            return self.reply(200, {"token": token, "access_token": token, "expires_in": 300, "issued_at": now})
        if path in ("/v2", "/v2/"):
            if self.headers.get("Authorization", "").lower().startswith("bearer "):
                return self.reply(200, {})
            challenge = 'Bearer realm="%s",service="%s"' % (self.realm(), SERVICE)
            return self.reply(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]},
                [("WWW-Authenticate", challenge)],
            )
        if path.startswith("/v2/ratelimit-overall/"):
            return self.reply(429)
        m = REPO_PATH.match(path)
        if not m:
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
        name = m.group("name")
        if name.startswith("forbidden/"):
            # A repository the caller may not pull: 403 DENIED.
            return self.reply(
                403,
                {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]},
            )
        if name.startswith("library/"):
            return self.reply(
                429,
                {"errors": [{"code": "TOOMANYREQUESTS", "message": RATE_LIMIT_MESSAGE}]},
                [
                    ("ratelimit-limit", "100;w=21600"),
                    ("ratelimit-remaining", "0;w=21600"),
                    ("docker-ratelimit-source", self.client_address[0]),
                    ("Retry-After", "3600"),
                ],
            )
        challenge = 'Bearer realm="%s",service="%s",scope="repository:%s:pull",error="insufficient_scope"' % (
            self.realm(),
            SERVICE,
            name,
        )
        return self.reply(
            401,
            {
                "errors": [
                    {
                        "code": "UNAUTHORIZED",
                        "message": "authentication required",
                        "detail": [{"Type": "repository", "Name": name, "Action": "pull"}],
                    }
                ]
            },
            [("WWW-Authenticate", challenge)],
        )

    def do_GET(self):
        self.route()

    def do_HEAD(self):
        self.route()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    args = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server = TLSServer((args.host, args.port), Handler, ctx)
    print("hubstub listening on https://%s:%d" % (args.host, args.port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
