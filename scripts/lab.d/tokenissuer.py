#!/usr/bin/env python3
"""Lab token issuer for the bearer-token registry (docker distribution's
`auth.token` flow, the one Docker Hub, GHCR and Harbor use).

HTTPS only. Endpoints:

  GET  /token?service=S&scope=repository:NAME:pull[,push][&scope=...]
  POST /token   (OAuth2 form: grant_type=password, username, password,
                 service, scope; what containerd tries first when it has
                 credentials)

Answers:
  - good Basic credentials  -> 200, token granting the requested actions
                               (pull, push; "*" for registry:catalog:*)
  - no credentials          -> 200, anonymous token with an EMPTY access
                               list, so the registry answers 401
                               error="insufficient_scope" like Docker Hub
  - wrong credentials       -> 401, WWW-Authenticate: Basic realm=...,
                               {"errors":[{"code":"UNAUTHORIZED",...}]}

Tokens are RS256 JWTs: header {alg, typ, x5c:[base64 DER signing cert]},
claims iss, sub, aud (a string: distribution 2.8 rejects an array), exp
(now+300), nbf, iat, jti, access[]. Body:
{"token", "access_token", "expires_in": 300, "issued_at"}.

Every request is logged to stdout as one line.
"""

import argparse
import base64
import datetime
import hmac
import json
import os
import secrets
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

TTL = 300
ALLOWED_REPO_ACTIONS = ("pull", "push")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Issuer:
    def __init__(self, args):
        with open(args.signing_key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        with open(args.signing_cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")]
        self.issuer = args.issuer
        self.service = args.service
        self.user = args.user
        if args.password_file:
            with open(args.password_file, encoding="utf-8") as f:
                self.password = f.read().strip()
        else:
            self.password = os.environ.get("PULLFIX_TOKEN_PASSWORD", "")
        if not self.password:
            sys.exit("tokenissuer: no password (use --password-file or PULLFIX_TOKEN_PASSWORD)")

    def check(self, user, password):
        """True/False for given credentials."""
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_pass = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_pass

    @staticmethod
    def grant(scopes, authenticated):
        """access[] for the requested scopes; empty when anonymous."""
        if not authenticated:
            return []
        access = []
        for scope in scopes:
            # repository:team/checkout:pull,push (names may contain ':'? no:
            # the name is between the first and the last colon)
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if typ == "repository":
                actions = [a for a in actions if a in ALLOWED_REPO_ACTIONS]
            elif typ == "registry" and name == "catalog":
                actions = [a for a in actions if a == "*"]
            else:
                continue
            if actions:
                access.append({"type": typ, "name": name, "actions": actions})
        return access

    def token(self, sub, service, access):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": self.x5c}
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": service or self.service,
            "exp": now + TTL,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        sig = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return signing_input + "." + b64url(sig), issued.strftime("%Y-%m-%dT%H:%M:%SZ")


class TLSServer(ThreadingHTTPServer):
    """Threaded HTTPS server that does the TLS handshake in the connection's
    own thread, so a client that connects and stalls cannot block accept()."""

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
    server_version = "pullfix-lab-issuer"
    sys_version = ""

    def log_message(self, fmt, *args):  # one line per request, to stdout
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def unauthorized(self, message):
        issuer = self.server.issuer
        self.send_json(
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
            [("WWW-Authenticate", 'Basic realm="%s"' % issuer.issuer)],
        )

    def basic_credentials(self):
        """(user, password), None when absent, or False when malformed."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except Exception:
            return False
        return (user, password) if sep else False

    def issue(self, creds, service, scopes, oauth):
        issuer = self.server.issuer
        if creds is False:
            return self.unauthorized("malformed credentials")
        if creds is not None and not issuer.check(*creds):
            return self.unauthorized("incorrect username or password")
        sub = creds[0] if creds else ""
        access = issuer.grant(scopes, creds is not None)
        token, issued = issuer.token(sub, service, access)
        body = {"token": token, "access_token": token, "expires_in": TTL, "issued_at": issued}
        if oauth:
            body["scope"] = " ".join(scopes)
        self.send_json(200, body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
        q = urllib.parse.parse_qs(url.query)
        scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
        self.issue(self.basic_credentials(), q.get("service", [""])[0], scopes, oauth=False)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if url.path != "/token":
            return self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
        form = urllib.parse.parse_qs(raw)
        if form.get("grant_type", [""])[0] != "password":
            return self.send_json(400, {"error": "unsupported_grant_type"})
        scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
        creds = (form.get("username", [""])[0], form.get("password", [""])[0])
        self.issue(creds, form.get("service", [""])[0], scopes, oauth=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--signing-cert", required=True)
    p.add_argument("--signing-key", required=True)
    p.add_argument("--issuer", default="pullfix-lab-issuer")
    p.add_argument("--service", default="pullfix-lab-registry")
    p.add_argument("--user", default="tokenuser")
    p.add_argument("--password-file")
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server = TLSServer((args.host, args.port), Handler, ctx)
    server.issuer = Issuer(args)
    print("tokenissuer listening on https://%s:%d/token" % (args.host, args.port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
