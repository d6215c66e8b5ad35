"""Receivers the tests point webhooks at."""
import hashlib
import hmac
import http.server
import json
import threading
import time


class Receiver:
    """A webhook receiver on loopback that checks Colony-Signature with Python's hmac.
    mode: "ok" (204), "fail" (500), "slow" (answers after 8 s)."""

    def __init__(self, mode="ok", tls=None):
        self.mode = mode
        self.received = []   # (event dict, headers, signature valid)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((json.loads(body), dict(self.headers), outer.verify(self.headers, body)))
                if outer.mode == "slow":
                    time.sleep(8)
                code = 500 if outer.mode == "fail" else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:  # (cert, key): serve https on "localhost"
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.server.server_address[1]}/hook"
        else:
            self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.secret = None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, headers, body):
        """Whether Colony-Signature is valid (False when there is none: a plugin's post, say)."""
        parts = dict(p.split("=", 1) for p in headers.get("Colony-Signature", "").split(",") if "=" in p)
        if self.secret is None or "t" not in parts or "v1" not in parts or abs(int(parts["t"]) - time.time()) > 300:
            return False
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()
