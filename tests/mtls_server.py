#!/usr/bin/env python3
"""An HTTPS server on loopback that *requires* a client certificate signed
by the given CA (mutual TLS), for check_mtls. Answers every POST with 200
and counts the records of NDJSON bodies (gzip or not). Prints
"listening on 127.0.0.1:PORT" first; exits after --seconds."""
import argparse, gzip, http.server, ssl, sys, threading

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--ca", required=True)
ap.add_argument("--seconds", type=float, default=60)
a = ap.parse_args()

lock = threading.Lock()
records = [0]


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with lock:
            records[0] += sum(1 for line in body.splitlines() if line.strip())
            sys.stderr.write("records %d\n" % records[0])
            sys.stderr.flush()
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(a.cert, a.key)
ctx.load_verify_locations(a.ca)
ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
threading.Timer(a.seconds, srv.shutdown).start()
srv.serve_forever()
