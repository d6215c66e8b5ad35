"""The node and its configuration, as the end-to-end tests start it."""
import json
import os
import re
import signal
import subprocess
import time
import http.client

from .env import COLONYD, _ADMIN_KEYS, _STARTED, store_spec

IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
_LISTENING = re.compile(r"\blistening\b.*?(?:\bport=|\"port\":)(\d+)")


def listening_port(log_text):
    """The port of the node's `listening` log line (text or JSON logs); None before it."""
    m = _LISTENING.search(log_text)
    return int(m.group(1)) if m else None


class Node:
    """One colonyd process on loopback with its own data dir. It listens on
    port 0 (the kernel picks a free one, no race with other processes) and
    the port is read from its `listening` log line."""

    def __init__(self, data_dir, extra=(), tls_ca=None):
        self.data_dir = data_dir
        self.tls = None
        if tls_ca:  # the node serves HTTPS with a certificate this CA file vouches for
            import ssl
            self.tls = ssl.create_default_context(cafile=tls_ca)
        self.port = None
        self.log_path = os.path.join(data_dir, "colonyd.log")
        # A restart on the same data dir appends to the same log: its port is
        # in the lines written after this point.
        self.log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            # The test receivers listen on loopback: tests of the SSRF guard
            # pass --webhooks.allow-private-targets false (later flags win).
            [COLONYD, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
             "--store", store_spec(), "--webhooks.allow-private-targets", "true", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        _STARTED.append(self.proc)
        self.conn = None
        self.admin_key = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("colonyd exited early:\n" + self.logs())
            if self.port is None:
                self.port = listening_port(self.logs_since_start())
                if self.port is None:
                    time.sleep(0.02)
                    continue
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    self._read_admin_key()
                    return
            except OSError:
                self.conn = None
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("colonyd not ready:\n" + self.logs())

    def _read_admin_key(self):
        path = os.path.join(self.data_dir, "admin.key")
        if os.path.exists(path):
            with open(path) as f:
                _ADMIN_KEYS[store_spec()] = f.read().strip()
        self.admin_key = _ADMIN_KEYS.get(store_spec())

    def logs_since_start(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, raw=None, auth=True):
        """Sends the platform admin key unless `auth` is False or a token/key string."""
        headers = dict(headers or {})
        key = self.admin_key if auth is True else auth
        if key and "Authorization" not in headers:
            headers["Authorization"] = "Bearer " + key
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        # A connection the node closed (idle timeout) is opened again and the
        # request sent again, but only for methods a repeat cannot change:
        # a POST or PATCH is never sent twice behind the test's back.
        attempts = 2 if method in IDEMPOTENT else 1
        for attempt in range(attempts):
            if self.conn is None:
                self.conn = (http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.tls)
                             if self.tls else http.client.HTTPConnection("127.0.0.1", self.port, timeout=30))
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, dict(resp.getheaders()), payload
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn = None
                if attempt == attempts - 1:
                    raise

    def json(self, method, path, body=None, headers=None, auth=True):
        status, hdrs, payload = self.request(method, path, body, headers, auth=auth)
        doc = json.loads(payload) if payload and hdrs.get("Content-Type", "").endswith("json") else None
        return status, hdrs, doc

    def stop(self, sig=signal.SIGTERM):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(sig)
        started = time.time()
        code = self.proc.wait(timeout=15)
        self.log.close()
        if code != 0:  # say why before the test's clean-up removes the data dir and its log
            import sys
            print(f"colonyd exited {code}; the end of its log:\n" + self.logs()[-8000:], file=sys.stderr)
        return code, time.time() - started
