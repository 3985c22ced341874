#!/usr/bin/env python3
"""A registry front that breaks layer downloads, for the pull faults that
are not the registry's answer (docs/lab.md, "Pull faults"):

  faultproxy.py LISTEN_PORT UPSTREAM_HOST:PORT

Plain HTTP in front of the lab's anonymous registry. Manifests and
everything else pass through; a blob GET of a repository whose name starts
with
  faults/cut/      sends its headers and half the body, then resets the
                   connection (a pull cut off mid-layer)
  faults/corrupt/  sends the whole body with bytes flipped (a layer that
                   does not match its digest)
"""

import http.client
import http.server
import socket
import struct
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("faultproxy: %s\n" % (fmt % args))

    def forward(self, head_only=False):
        up = http.client.HTTPConnection(UPSTREAM, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        up.request(self.command, self.path, headers=headers)
        resp = up.getresponse()
        body = resp.read()
        up.close()
        path = self.path.split("?")[0]
        blob = self.command == "GET" and "/blobs/sha256:" in path and resp.status == 200
        cut = blob and path.startswith("/v2/faults/cut/")
        corrupt = blob and path.startswith("/v2/faults/corrupt/")
        if corrupt:
            body = bytes(b ^ 0xFF for b in body)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in ("connection", "transfer-encoding", "content-length"):
                continue
            self.send_header(k, v)
        # A HEAD's length is the upstream's (there is no body to count).
        length = resp.getheader("Content-Length", "0") if head_only else str(len(body))
        self.send_header("Content-Length", length)
        self.end_headers()
        if head_only:
            return
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            # RST instead of FIN: the client sees the connection reset.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_GET(self):
        self.forward()

    def do_HEAD(self):
        self.forward(head_only=True)


if __name__ == "__main__":
    UPSTREAM = sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
