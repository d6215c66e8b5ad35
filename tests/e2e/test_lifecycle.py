#!/usr/bin/env python3
"""End-to-end tests of a node's life: restarts with durable timers, TLS,
slow entities, shutdown with requests in flight, many slow clients and a
database outage (PostgreSQL only).

Environment: see colony_testkit/env.py.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from colony_testkit import COLONYD, STORE_KIND, Node


class Restart(unittest.TestCase):
    def test_acknowledged_writes_survive_a_restart(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-restart-")
        try:
            node = Node(d, ["--log-format", "json"])
            slug = "rs-" + uuid.uuid4().hex[:8]
            status, _, t = node.json("POST", "/v1/tenants", {"slug": slug, "name": "Restart", "plan": "pro"})
            self.assertEqual(status, 201)
            users = []
            for i in range(50):
                status, _, u = node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": f"r{i}@example.com"})
                self.assertEqual(status, 201)
                users.append(u)
            node.json("PATCH", f"/v1/tenants/{t['id']}/users/{users[0]['id']}", {"name": "Patched"})
            node.json("POST", f"/v1/tenants/{t['id']}/activate")
            code, took = node.stop()
            self.assertEqual(code, 0)
            self.assertLess(took, 10)
            first_lines = [json.loads(l) for l in node.logs().splitlines()[:3]]
            self.assertEqual(first_lines[0]["msg"], "colonyd starting")
            self.assertIn("version", first_lines[0])
            self.assertIn("store", first_lines[0])

            again = Node(d)
            status, _, t2 = again.json("GET", "/v1/tenants/" + slug)
            self.assertEqual((status, t2["status"], t2["usage"]["users"]), (200, "active", 50))
            self.assertEqual(again.json("GET", f"/v1/tenants/{t['id']}/users/{users[0]['id']}")[2]["name"], "Patched")
            listed = again.json("GET", f"/v1/tenants/{t['id']}/users?limit=500")[2]["data"]
            self.assertEqual(len(listed), 50)
            self.assertEqual(again.stop()[0], 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_a_trial_that_expired_while_the_node_was_down_is_suspended_at_start(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-")
        try:
            n = Node(d, ["--timers.poll-interval", "100ms"])
            status, _, t = n.json("POST", "/v1/tenants", {"slug": "exp-" + uuid.uuid4().hex[:8], "name": "E"})
            self.assertEqual(status, 201)
            soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 2)) + "Z"
            self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"trialEndsAt": soon})[0], 200)
            self.assertEqual(n.stop()[0], 0)
            time.sleep(3)  # the trial ends while no node runs
            n2 = Node(d, ["--timers.poll-interval", "100ms"])
            deadline = time.time() + 10
            while time.time() < deadline:
                cur = n2.json("GET", f"/v1/tenants/{t['id']}")[2]
                if cur["status"] == "suspended":
                    break
                time.sleep(0.05)
            self.assertEqual((cur["status"], cur["statusReason"]), ("suspended", "trial_expired"))
            self.assertEqual(n2.stop()[0], 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_invalid_configuration_exits_2_naming_the_option(self):
        r = subprocess.run([COLONYD, "--http.body-limit", "huge"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("http.body-limit", r.stderr)
        r = subprocess.run([COLONYD, "--http.cors-origins", "https://ok.example,app.example.com/path"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("http.cors-origins", r.stderr)
        self.assertIn("app.example.com/path", r.stderr)
        conf = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "colony.conf")
        r = subprocess.run([COLONYD, "--config", conf, "--dump-config"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)  # the shipped, documented file is valid
        self.assertIn('listen = "127.0.0.1:8080"', r.stdout)
        self.assertIn("free = { max-users = 5", r.stdout)
        r = subprocess.run([COLONYD, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--store", r.stdout)


class Tls(unittest.TestCase):
    """--tls-cert/--tls-key: HTTPS only, TLS 1.2 and newer, HSTS on every answer."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-tls-")
        cls.cert, cls.key = os.path.join(cls.dir, "node.pem"), os.path.join(cls.dir, "node.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", cls.key, "-out", cls.cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        cls.node = Node(cls.dir, ["--tls-cert", cls.cert, "--tls-key", cls.key], tls_ca=cls.cert)

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, code

    def s_client(self, *args):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.node.port}", "-CAfile", self.cert,
                               *args], input="", capture_output=True, text=True, timeout=20)

    def test_https_with_hsts_and_the_api_behind_it(self):
        status, hdrs, _ = self.node.request("GET", "/livez")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Strict-Transport-Security"], "max-age=31536000")
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "tls-" + uuid.uuid4().hex[:8], "name": "TLS"})
        self.assertEqual(status, 201, t)
        self.assertIn("https", self.node.logs())

    def test_plain_http_and_old_protocols_are_refused(self):
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = s.recv(4096)
            except ConnectionResetError:
                answer = b""
            self.assertNotIn(b"HTTP/1.1 200", answer)
        self.assertEqual(self.s_client("-tls1_2").returncode, 0)
        old = self.s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertNotEqual(old.returncode, 0, old.stdout)
        self.assertEqual(self.node.request("GET", "/livez")[0], 200)  # still serving

    def test_a_bad_certificate_or_key_stops_the_start_naming_the_option(self):
        r = subprocess.run([COLONYD, "--listen", "127.0.0.1:0", "--data-dir", self.dir + "/bad", "--tls-cert",
                            self.dir + "/missing.pem", "--tls-key", self.key], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("tls-cert", r.stderr)
        other_key = os.path.join(self.dir, "other.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                        other_key], check=True, capture_output=True)
        r = subprocess.run([COLONYD, "--listen", "127.0.0.1:0", "--data-dir", self.dir + "/bad2", "--tls-cert",
                            self.cert, "--tls-key", other_key], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("tls-key", r.stderr)
        self.assertIn("mismatch", r.stderr)


class SlowEntity(unittest.TestCase):
    """http.request-timeout for an entity that does not answer: the bridge's own deadline."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-slow-")
        cls.node = Node(cls.dir, ["--request-timeout", "1s", "--debug.fault-injection", "true"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_an_entity_that_does_not_answer_in_time_gets_503_and_its_late_answer_is_dropped(self):
        slug = "slow-" + uuid.uuid4().hex[:8]
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": slug, "name": "Slow", "plan": "free"})
        self.assertEqual(status, 201, t)
        status, _, u = self.node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "slow@example.com", "name": "S"})
        self.assertEqual(status, 201, u)
        auth = {"Authorization": "Bearer " + self.node.admin_key}
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        started = time.time()
        conn.request("GET", f"/v1/tenants/{t['id']}/users/{u['id']}", headers=dict(auth, **{"X-Colony-Fault": "stall=2500"}))
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        waited = time.time() - started
        self.assertEqual(resp.status, 503, doc)
        self.assertTrue(doc["type"].endswith("/unavailable"), doc)
        self.assertIn("did not answer in time", doc["detail"])
        self.assertGreater(waited, 0.9)
        self.assertLess(waited, 2.0)  # the bridge's deadline, not the entity's 2.5 s
        time.sleep(2.0)  # the entity answers meanwhile; that answer must not reach this connection
        conn.request("GET", "/livez", headers=auth)
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 200, body)
        self.assertNotIn(b"slow@example.com", body)  # a late user answer written here would be read as this one
        conn.request("GET", f"/v1/tenants/{t['id']}/users/{u['id']}", headers=auth)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        self.assertEqual((resp.status, body["id"]), (200, u["id"]))
        conn.close()


class ShutdownWithARequestHeld(unittest.TestCase):
    """SIGTERM while an entity still holds a request past the shutdown timeout:
    the node exits 0 and in time. The actor side then still owns that
    connection when the HTTP server stops (under AddressSanitizer, releasing
    it after the io_context was gone was a heap-use-after-free)."""

    def test_sigterm_with_a_request_held_by_a_stalled_entity_exits_cleanly(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-held-")
        try:
            node = Node(d, ["--request-timeout", "10s", "--shutdown-timeout", "300ms", "--debug.fault-injection", "true"])
            status, _, t = node.json("POST", "/v1/tenants", {"slug": "held-" + uuid.uuid4().hex[:8], "name": "H"})
            self.assertEqual(status, 201, t)
            status, _, u = node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "held@example.com", "name": "H"})
            self.assertEqual(status, 201, u)
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
            conn.request("GET", f"/v1/tenants/{t['id']}/users/{u['id']}",
                         headers={"Authorization": "Bearer " + node.admin_key, "X-Colony-Fault": "stall=1500"})
            time.sleep(0.3)  # the entity is stalled with the request in hand
            code, took = node.stop()
            conn.close()
            self.assertEqual(code, 0, node.logs()[-4000:])
            self.assertLess(took, 8.0)
            self.assertIn("requests still in flight at the shutdown deadline", node.logs())
        finally:
            shutil.rmtree(d, ignore_errors=True)


class SlowAndManyClients(unittest.TestCase):
    """http.read-timeout, http.idle-timeout and http.max-connections, on a node of their own."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-limits-")
        cls.node = Node(cls.dir, ["--http.read-timeout", "1s", "--http.idle-timeout", "1s",
                                  "--http.max-connections", "3", "--http.max-in-flight", "2",
                                  "--debug.fault-injection", "true"])
        cls.node.conn.close()  # the readiness probe's connection must not count against the limit
        cls.node.conn = None

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def closed_by_server_within(self, sock, seconds):
        sock.settimeout(seconds)
        try:
            return sock.recv(4096) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def test_a_client_that_stalls_mid_request_is_cut_off_after_the_read_timeout(self):
        with socket.create_connection(("127.0.0.1", self.node.port)) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHo")
            started = time.time()
            self.assertTrue(self.closed_by_server_within(s, 5))
            self.assertLess(time.time() - started, 3)

    def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(self):
        with socket.create_connection(("127.0.0.1", self.node.port)) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            self.assertIn(b" 200 ", s.recv(4096))
            started = time.time()
            self.assertTrue(self.closed_by_server_within(s, 5))
            self.assertGreater(time.time() - started, 0.5)

    def test_requests_beyond_max_in_flight_get_503_overloaded_then_are_served_again(self):
        """Overload protection: with http.max-in-flight (2) requests waiting for their answers
        (held here by the test-only delay fault), the next one is answered 503 at once."""
        results = []

        def slow():
            conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
            conn.request("GET", "/livez", headers={"X-Colony-Fault": "delay=1500"})
            results.append(conn.getresponse().status)
            conn.close()
        held = [threading.Thread(target=slow) for _ in range(2)]
        for t in held:
            t.start()
        time.sleep(0.4)
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        started = time.time()
        conn.request("GET", "/livez")
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        conn.close()
        self.assertEqual(resp.status, 503)
        self.assertLess(time.time() - started, 0.5)  # turned away, not queued
        self.assertEqual(resp.getheader("Retry-After"), "1")
        self.assertEqual(doc["type"], "https://colony.dev/problems/overloaded")
        for t in held:
            t.join()
        self.assertEqual(results, [200, 200])
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        conn.request("GET", "/livez")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_connections_beyond_the_limit_are_refused_and_served_again_later(self):
        held = [socket.create_connection(("127.0.0.1", self.node.port)) for _ in range(3)]
        try:
            time.sleep(0.2)  # accepted
            extra = socket.create_connection(("127.0.0.1", self.node.port))
            self.assertTrue(self.closed_by_server_within(extra, 0.9))  # before the held ones time out
            extra.close()
        finally:
            for s in held:
                s.close()
        deadline = time.time() + 5
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=5)
                conn.request("GET", "/livez")
                self.assertEqual(conn.getresponse().status, 200)
                conn.close()
                break
            except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)


class DatabaseOutage(unittest.TestCase):
    """The server goes away: readiness says so, writes get 503, then it all recovers."""

    def pg_ctl(self, *args):
        state = os.path.dirname(os.environ["COLONY_TEST_PG_DSN_FILE"])
        with open(os.path.join(state, "datadir")) as f:
            data = f.read().strip()
        with open(os.path.join(state, "port")) as f:
            port = f.read().strip()
        cmd = ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", data + "/db", "-w", *args]
        if args[0] == "start":
            cmd += ["-l", data + "/server.log", "-o",
                    f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def test_store_outage_and_recovery(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-outage-")
        node = Node(d)
        try:
            self.pg_ctl("stop", "-m", "fast")
            try:
                deadline = time.time() + 10
                while node.request("GET", "/readyz")[0] != 503 and time.time() < deadline:
                    time.sleep(0.05)
                status, _, body = node.request("GET", "/readyz?verbose")
                self.assertEqual(status, 503)
                self.assertIn(b"[-]store", body)
                status, hdrs, payload = node.request("POST", "/v1/tenants", {"slug": "outage-" + uuid.uuid4().hex[:6], "name": "x"})
                self.assertEqual(status, 503, payload)
                self.assertIn("Retry-After", hdrs)
            finally:
                self.pg_ctl("start")
            deadline = time.time() + 20
            while node.request("GET", "/readyz")[0] != 200 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(node.request("GET", "/readyz")[0], 200)
            status, _, payload = node.request("POST", "/v1/tenants", {"slug": "back-" + uuid.uuid4().hex[:6], "name": "x"})
            self.assertEqual(status, 201, payload)
        finally:
            self.assertEqual(node.stop()[0], 0)
            shutil.rmtree(d, ignore_errors=True)

    def test_sigterm_with_answers_still_pending_for_vanished_clients_exits_promptly(self):
        """Requests wait on a locked table, their clients hang up, SIGTERM comes: the answers that
        arrive afterwards are still written (to closed sockets), so the drain ends as soon as the
        lock goes, not at the shutdown timeout (the io threads used to run out of work and stop)."""
        d = tempfile.mkdtemp(prefix="colony-e2e-sigterm-")
        node = Node(d, ["--shutdown-timeout", "10s"])
        with open(os.environ["COLONY_TEST_PG_DSN_FILE"]) as f:
            dsn = f.read().strip()
        locker = None
        try:
            status, _, t = node.json("POST", "/v1/tenants", {"slug": "sig-" + uuid.uuid4().hex[:8], "name": "x"})
            self.assertEqual(status, 201)
            locker = subprocess.Popen(["psql", dsn, "-Atq", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            locker.stdin.write("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
            locker.stdin.flush()
            self.assertEqual(locker.stdout.readline().strip(), "locked")
            socks = []
            for i in range(16):
                s = socket.create_connection(("127.0.0.1", node.port))
                body = json.dumps({"email": f"gone{i}@example.com"})
                s.sendall(f"POST /v1/tenants/{t['id']}/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Authorization: Bearer {node.admin_key}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
                socks.append(s)
            node.conn.close()  # no idle keep-alive connection either: nothing else keeps the server busy
            node.conn = None
            time.sleep(0.3)  # parsed and waiting on the lock
            for s in socks:
                s.close()
            node.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            locker.stdin.write("COMMIT;\n")
            locker.stdin.close()
            locker.wait(timeout=10)
            started = time.time()
            code = node.proc.wait(timeout=15)
            self.assertEqual(code, 0)
            self.assertLess(time.time() - started, 5, node.logs())
            self.assertNotIn("still in flight", node.logs())
        finally:
            if locker and locker.poll() is None:
                locker.kill()
            if node.proc.poll() is None:
                node.stop()
            shutil.rmtree(d, ignore_errors=True)


if STORE_KIND != "postgres":
    del DatabaseOutage  # needs the PostgreSQL fixture: it runs in the e2e_postgres test


if __name__ == "__main__":
    unittest.main(verbosity=2)
