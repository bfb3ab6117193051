#!/usr/bin/env python3
"""httpd.py - a small HTTP(S) server for the CLI tests of the network checks.

Listens on 127.0.0.1 only. Paths:
  /ok                 200 "hello moonwatch"
  /status/<n>         status n, body "status <n>"
  /slow/<seconds>     waits, then 200 "slow done"
  /redirect?to=<path> 302 to <path> on this server
  /echo               200, a JSON object: method, path, headers, body
  anything else       404 "not found"

Usage: httpd.py [--port N] [--port-file PATH] [--cert PEM --key PEM]
The chosen port (with --port 0, the default, the kernel's choice) is
printed on stdout and, with --port-file, written to PATH (through a
rename, so a reader never sees half of it). Runs until killed.
"""
import argparse
import json
import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_SLOW = 60.0  # seconds: a test never needs longer
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "moonwatch-test-httpd"

    def log_message(self, fmt, *args):  # quiet: tests read stdout
        pass

    def reply(self, status, body, ctype="text/plain", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(n, MAX_BODY)) if n > 0 else b""

    def route(self):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        body = self.read_body()
        if url.path == "/ok":
            return self.reply(200, "hello moonwatch")
        if parts[0] == "status" and len(parts) == 2 and parts[1].isdigit():
            code = int(parts[1])
            return self.reply(code, "status %d" % code)
        if parts[0] == "slow" and len(parts) == 2:
            time.sleep(min(float(parts[1]), MAX_SLOW))
            return self.reply(200, "slow done")
        if url.path == "/redirect":
            to = parse_qs(url.query).get("to", ["/ok"])[0]
            return self.reply(302, "moved", headers={"Location": to})
        if url.path == "/echo":
            out = {"method": self.command, "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            return self.reply(200, json.dumps(out, sort_keys=True), "application/json")
        return self.reply(404, "not found")

    def handle_one(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_one


class Server(ThreadingHTTPServer):
    daemon_threads = True
    tls = None  # ssl.SSLContext when serving https

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls:
            # The handshake runs in the handler's thread, on first read,
            # so a client that never speaks cannot stall accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # refused handshakes and dropped clients are expected


def write_port(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.tls = ctx
    port = srv.server_address[1]
    print(port, flush=True)
    if args.port_file:
        write_port(args.port_file, port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
