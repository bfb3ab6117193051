#!/usr/bin/env python3
"""A stand-in for the Datadog intake, for deploy/demo.sh.

  dd_intake.py serve LOG PORTFILE   listen on 127.0.0.1 (a free port,
                                    written to PORTFILE), answer every POST
                                    202 as the intake does, and append one
                                    JSON line per request to LOG: its path,
                                    encoding, whether it had a DD-API-KEY
                                    header (never the key) and its body,
                                    inflated when it is deflate.
  dd_intake.py summary LOG          print what arrived: per endpoint the
                                    requests, and the series, service checks
                                    and events they carried, by name.

Loopback only; nothing here talks to Datadog.
"""
import http.server
import json
import os
import sys
import zlib

MAX_BODY = 64 << 20  # the intake's own cap is 62 MiB uncompressed


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log = None

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, MAX_BODY))
        enc = self.headers.get("Content-Encoding") or ""
        try:
            if enc == "deflate":
                body = zlib.decompress(body)
            doc = json.loads(body)
        except ValueError:  # zlib.error and JSONDecodeError both are
            doc = None
        Handler.log.write(json.dumps({
            "path": self.path.split("?", 1)[0], "encoding": enc,
            "key": bool(self.headers.get("DD-API-KEY")), "body": doc}) + "\n")
        Handler.log.flush()
        reply = b'{"status":"ok"}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def serve(log, portfile):
    Handler.log = open(log, "a", encoding="utf-8")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(portfile + ".tmp", "w", encoding="utf-8") as f:
        f.write("%d\n" % srv.server_port)
    # renamed into place so that a reader never sees half a number
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


def top(counts, n):
    """'name count, ...' for the n largest counts, and how many more."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    s = ", ".join("%s %d" % kv for kv in items[:n])
    return s + (", ... %d more" % (len(items) - n) if len(items) > n else "")


def summary(log):
    status = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
    reqs = {}
    metrics, points, checks, events = {}, 0, {}, []
    keyless = plain = bad = 0
    for line in open(log, encoding="utf-8", errors="replace"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        reqs[r["path"]] = reqs.get(r["path"], 0) + 1
        keyless += not r["key"]
        plain += r["encoding"] != "deflate"
        body = r["body"]
        if body is None:
            bad += 1
        elif r["path"] == "/api/v1/series":
            for s in body.get("series", []):
                metrics[s["metric"]] = metrics.get(s["metric"], 0) + 1
                points += len(s.get("points", []))
        elif r["path"] == "/api/v1/check_run":
            for c in body:
                k = "%s %s" % (c["check"], status.get(c["status"], c["status"]))
                checks[k] = checks.get(k, 0) + 1
        elif r["path"] == "/api/v1/events":
            events.append(body.get("title", ""))
    if not reqs:
        print("     nothing arrived")
        return 1
    print("     %d requests: %s" % (sum(reqs.values()), top(reqs, 5)))
    print("     every one deflated and with a DD-API-KEY header (not shown): %s" %
          ("yes" if not keyless and not plain and not bad else
           "no: %d without a key, %d not deflate, %d unreadable" % (keyless, plain, bad)))
    print("     /api/v1/series: %d points of %d metrics, the most sent:" % (points, len(metrics)))
    print("       " + top(metrics, 6))
    print("     /api/v1/check_run: %d service checks:" % sum(checks.values()))
    print("       " + top(checks, 6))
    print("     /api/v1/events: %d events" % len(events) + (":" if events else ""))
    for t in events[:6]:
        print("       " + t[:100])
    if len(events) > 6:
        print("       ... %d more" % (len(events) - 6))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        sys.exit(summary(sys.argv[2]))
    else:
        sys.exit("usage: dd_intake.py serve LOG PORTFILE | summary LOG")
