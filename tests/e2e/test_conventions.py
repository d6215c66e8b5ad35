#!/usr/bin/env python3
"""HTTP conventions and data at rest (issue "Hardening"): If-Match and
If-None-Match, header limits, tracing, CORS; monthly usage; files and
secrets at rest; Idempotency-Key. Runs with test_hardening.py, on both stores.

Environment: COLONYD, COLONY_TEST_STORE, COLONY_TEST_PG_DSN_FILE (colony_testkit/env.py).
"""
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hardening as hardening  # noqa: E402  (its NodeCase and start(); never a TestCase by name)
from colony_testkit import Receiver, token  # noqa: E402


class HttpConventions(hardening.NodeCase):
    """Conditional requests, the limits the HTTP layer answers itself, trace
    context, media types and CORS."""

    ORIGIN = "https://app.example.com"
    ARGS = ["--http.cors-origins", ORIGIN, "--http.body-limit", "64KiB"]

    def raw(self, data):
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
            s.sendall(data)
            out = b""
            while b"\r\n\r\n" not in out:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        head = out.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        fields = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        return int(head[0].split()[1]), fields

    def test_if_match_is_strong_and_takes_a_list(self):
        path = f"/v1/tenants/{self.t['id']}"
        status, hdrs, cur = self.node.json("GET", path)
        version = int(hdrs["ETag"].strip('"'))
        merge = {"Content-Type": "application/merge-patch+json"}
        for value, expect in ((f'W/"{version}"', 412), ('"999", "998"', 412), ("garbage", 412),
                              (f'"999", "{version}"', 200)):
            with self.subTest(if_match=value):
                status, hdrs, doc = self.node.json("PATCH", path, {"name": "N" + uuid.uuid4().hex[:4]},
                                                   headers={**merge, "If-Match": value})
                self.assertEqual(status, expect, doc)
                if status == 200:
                    version = int(hdrs["ETag"].strip('"'))
        self.assertEqual(self.node.json("PATCH", path, {"name": "Star"}, headers={**merge, "If-Match": "*"})[0], 200)

    def test_if_none_match_on_a_read_is_304_without_a_body(self):
        path = f"/v1/tenants/{self.t['id']}"
        status, hdrs, _ = self.node.request("GET", path)
        etag = hdrs["ETag"]
        for value in (etag, "W/" + etag, f'"12345", {etag}', "*"):
            with self.subTest(if_none_match=value):
                status, hdrs, body = self.node.request("GET", path, headers={"If-None-Match": value})
                self.assertEqual(status, 304)
                self.assertEqual(body, b"")
                self.assertEqual(hdrs["ETag"], etag)
                self.assertNotIn("Content-Length", hdrs)
        status, _, body = self.node.request("GET", path, headers={"If-None-Match": '"12345"'})
        self.assertEqual(status, 200)
        self.assertTrue(body)

    def test_answers_of_the_http_layer_carry_request_id_and_trace(self):
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        cases = [
            # one header field over http.header-limit (16 KiB): 431, not 414
            (b"GET /v1/tenants HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431),
            (b"POST /v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n"
             + b"x" * 70000, 413),
            (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        ]
        for data, expect in cases:
            with self.subTest(status=expect):
                status, fields = self.raw(data)
                self.assertEqual(status, expect)
                self.assertRegex(fields.get("x-request-id", ""), r"^[0-9a-f-]{36}$")
                self.assertRegex(fields.get("traceparent", ""), r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
        # Parsed but refused: the client's own request id and trace are answered.
        status, fields = self.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: mine-1\r\ntraceparent: " + tp.encode()
                                  + b"\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n")
        self.assertEqual((status, fields["x-request-id"], fields["traceparent"]), (431, "mine-1", tp))

    def test_tracestate_is_passed_through_with_a_valid_traceparent_only(self):
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        _, hdrs, _ = self.node.request("GET", "/livez", headers={"traceparent": tp, "tracestate": "congo=t61rcWkgMzE"})
        self.assertEqual((hdrs["traceparent"], hdrs.get("tracestate")), (tp, "congo=t61rcWkgMzE"))
        _, hdrs, _ = self.node.request("GET", "/livez", headers={"traceparent": "bogus", "tracestate": "congo=x"})
        self.assertNotEqual(hdrs["traceparent"], "bogus")
        self.assertNotIn("tracestate", hdrs)

    def test_a_charset_other_than_utf8_is_415(self):
        users = f"/v1/tenants/{self.t['id']}/users"
        body = {"email": "cs-" + uuid.uuid4().hex[:6] + "@example.com"}
        for ctype in ("application/json; charset=iso-8859-1", 'application/json;charset="utf-16"'):
            status, _, doc = self.node.json("POST", users, body, headers={"Content-Type": ctype})
            self.assertEqual(status, 415, doc)
        status, _, doc = self.node.json("POST", users, body, headers={"Content-Type": "application/json; charset=UTF-8"})
        self.assertEqual(status, 201, doc)

    def test_cors_exposes_the_headers_clients_need_and_preflights_only_known_paths(self):
        _, hdrs, _ = self.node.request("GET", f"/v1/tenants/{self.t['id']}", headers={"Origin": self.ORIGIN})
        exposed = {h.strip().lower() for h in hdrs["Access-Control-Expose-Headers"].split(",")}
        self.assertTrue({"ratelimit", "ratelimit-policy", "retry-after", "etag", "x-request-id"} <= exposed, exposed)
        pre = {"Origin": self.ORIGIN, "Access-Control-Request-Method": "POST"}
        status, _, _ = self.node.request("OPTIONS", "/v1/nothing-here", headers=pre, auth=False)
        self.assertEqual(status, 404)
        status, hdrs, _ = self.node.request("OPTIONS", f"/v1/tenants/{self.t['id']}/users", headers=pre, auth=False)
        self.assertEqual(status, 204)
        self.assertEqual({m.strip() for m in hdrs["Access-Control-Allow-Methods"].split(",")}, {"GET", "HEAD", "POST"})


class MonthlyUsage(unittest.TestCase):
    """GET /v1/tenants/{t} and /usage report the same apiCallsThisMonth, and
    the monthly counters start again at a new month (debug.clock-start puts
    the node's clock seconds before the year's last midnight)."""

    def test_both_reports_agree_and_reset_at_the_month_boundary(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-usage-")
        try:
            started = time.monotonic()
            node = hardening.start(d, ["--debug.clock-start", "2026-12-31T23:59:52Z"])
            node.admin_key = token(roles=["platform_admin"], exp=4_000_000_000)  # valid on the shifted clock too
            self.addCleanup(lambda: node.proc.poll() is None and node.stop())
            status, _, t = node.json("POST", "/v1/tenants", {"slug": "us-" + uuid.uuid4().hex[:10], "name": "U"})
            self.assertEqual(status, 201, t)
            status, _, key = node.json("POST", f"/v1/tenants/{t['id']}/api-keys", {"name": "k", "roles": ["admin"]})
            self.assertEqual(status, 201, key)

            def reports():
                a = node.json("GET", f"/v1/tenants/{t['id']}")[2]["usage"]
                b = node.json("GET", f"/v1/tenants/{t['id']}/usage")[2]["usage"]
                self.assertEqual(a, b)
                return a

            for _ in range(5):
                self.assertEqual(node.json("GET", f"/v1/tenants/{t['id']}/users", auth=key["key"])[0], 200)
            before = reports()
            self.assertEqual((before["month"], before["apiCallsThisMonth"]), ("2026-12", 5))
            time.sleep(max(0.0, 9.0 - (time.monotonic() - started)))  # the node's clock is past midnight now
            after = reports()
            self.assertEqual((after["month"], after["apiCallsThisMonth"]), ("2027-01", 0))
            for _ in range(2):
                self.assertEqual(node.json("GET", f"/v1/tenants/{t['id']}/users", auth=key["key"])[0], 200)
            self.assertEqual(reports()["apiCallsThisMonth"], 2)
            self.assertEqual(node.stop()[0], 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class FilesAtRest(unittest.TestCase):
    """The data directory is the node's user's only; so are its files."""

    def test_modes_of_the_data_dir_and_its_files(self):
        base = tempfile.mkdtemp(prefix="colony-e2e-files-")
        try:
            d = os.path.join(base, "var")
            node = hardening.start(base, ["--data-dir", d])  # var/ is created by the node (the log stays in base)
            self.assertEqual(node.json("POST", "/v1/tenants", {"slug": "f-" + uuid.uuid4().hex[:8], "name": "F"})[0], 201)
            self.assertEqual(node.stop()[0], 0)
            self.assertEqual(os.stat(d).st_mode & 0o777, 0o700)
            names = [n for n in os.listdir(d) if n.startswith("colony.db") or n in ("admin.key", "secrets.key")]
            self.assertIn("secrets.key", names)
            self.assertTrue(names)
            for name in names:
                self.assertEqual(os.stat(os.path.join(d, name)).st_mode & 0o777, 0o600, name)
            # A directory open to others is used, with a warning; the files are closed again.
            os.chmod(d, 0o755)
            for name in names:
                os.chmod(os.path.join(d, name), 0o644)
            node = hardening.start(base, ["--data-dir", d])
            self.assertEqual(node.stop()[0], 0)
            self.assertIn("the data directory is open to other users", node.logs())
            if os.path.exists(os.path.join(d, "colony.db")):
                self.assertEqual(os.stat(os.path.join(d, "colony.db")).st_mode & 0o777, 0o600)
        finally:
            shutil.rmtree(base, ignore_errors=True)


class SecretsAtRest(unittest.TestCase):
    """Webhook signing secrets are stored sealed: the database alone does not
    reveal them; deliveries are still signed with them."""

    def test_the_database_holds_no_webhook_secret_in_the_clear(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-sealed-")
        r = Receiver("ok")
        try:
            node = hardening.start(d, ["--webhooks.retry-base", "100ms", "--webhooks.allow-private-targets", "true"])
            status, _, t = node.json("POST", "/v1/tenants", {"slug": "se-" + uuid.uuid4().hex[:10], "name": "S"})
            self.assertEqual(status, 201, t)
            status, _, w = node.json("POST", f"/v1/tenants/{t['id']}/webhooks", {"url": r.url})
            self.assertEqual(status, 201, w)
            r.secret = w["secret"]
            self.assertEqual(node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "s@example.com"})[0], 201)
            deadline = time.time() + 20
            while time.time() < deadline and not r.received:
                time.sleep(0.05)
            self.assertTrue(r.received)
            self.assertTrue(all(valid for _, _, valid in r.received))  # signed with the real secret
            self.assertEqual(node.stop()[0], 0)
            self.assertEqual(os.stat(os.path.join(d, "secrets.key")).st_mode & 0o777, 0o600)
            if os.environ.get("COLONY_TEST_STORE", "sqlite") == "sqlite":
                import sqlite3
                with sqlite3.connect(os.path.join(d, "colony.db")) as db:
                    stored = [row[0] for row in db.execute("SELECT secret FROM webhook_endpoints")]
                self.assertEqual(len(stored), 1)
                self.assertTrue(stored[0].startswith("enc:v1:"), stored[0][:12])
                self.assertNotIn(w["secret"], stored[0])
                self.assertNotIn(w["secret"][6:], stored[0])
        finally:
            r.close()
            shutil.rmtree(d, ignore_errors=True)


class IdempotencyKeys(hardening.NodeCase):
    """Idempotency-Key on POST: stored per credential and route, replayed,
    422 for another body, 409 while the first runs, durable over restarts."""

    ARGS = ["--debug.fault-injection", "true"]
    PLAN = "pro"

    def post(self, path, body, key, auth=True, extra=None):
        """On a connection of its own (the test sends from several threads)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=30)
        try:
            conn.request("POST", path, body=json.dumps(body).encode(),
                         headers={"Idempotency-Key": key, "Content-Type": "application/json",
                                  "Authorization": "Bearer " + (self.node.admin_key if auth is True else auth),
                                  **(extra or {})})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def test_a_repeat_replays_the_first_answer_and_changes_nothing(self):
        key = str(uuid.uuid4())
        slug = "idt-" + uuid.uuid4().hex[:8]
        first = self.post("/v1/tenants", {"slug": slug, "name": "Once"}, key)
        self.assertEqual(first[0], 201, first[2])
        for _ in range(3):
            again = self.post("/v1/tenants", {"slug": slug, "name": "Once"}, key)
            self.assertEqual(again[0], 201, again[2])
            self.assertEqual(again[2], first[2])
            self.assertEqual(again[1]["Location"], first[1]["Location"])
            self.assertEqual(again[1]["ETag"], first[1]["ETag"])
            self.assertEqual(again[1].get("Idempotency-Replayed"), "true")
        self.assertNotIn("Idempotency-Replayed", first[1])
        # One tenant, one event.
        status, _, page = self.node.json("GET", "/v1/tenants?limit=500")
        self.assertEqual(sum(1 for t in page["data"] if t["slug"] == slug), 1)
        tid = json.loads(first[2])["id"]
        feed = self.node.json("GET", f"/v1/tenants/{tid}/events?after=0")[2]["data"]
        self.assertEqual([e["event"]["type"] for e in feed], ["tenant.created"])

    def test_the_same_key_with_another_body_is_422_and_keys_are_per_credential(self):
        users = f"/v1/tenants/{self.t['id']}/users"
        key = str(uuid.uuid4())
        self.assertEqual(self.post(users, {"email": "k1@example.com"}, key)[0], 201)
        status, _, body = self.post(users, {"email": "k2@example.com"}, key)
        self.assertEqual(status, 422, body)
        self.assertIn("idempotency-key-reused", json.loads(body)["type"])
        # Another credential has keys of its own.
        admin = token(tenant=self.t["id"], roles=["admin"])
        status, _, body = self.post(users, {"email": "k2@example.com"}, key, auth=admin)
        self.assertEqual(status, 201, body)
        # A bad key is 400.
        self.assertEqual(self.post(users, {"email": "k3@example.com"}, "x" * 300)[0], 400)

    def test_a_repeat_while_the_first_still_runs_is_409(self):
        users = f"/v1/tenants/{self.t['id']}/users"
        key = str(uuid.uuid4())
        body = {"email": "slow@example.com"}
        result = {}

        def first():
            result["first"] = self.post(users, body, key, extra={"X-Colony-Fault": "stall=1500"})
        th = threading.Thread(target=first)
        th.start()
        time.sleep(0.4)
        status, hdrs, doc = self.post(users, body, key)
        self.assertEqual(status, 409, doc)
        self.assertIn("idempotency-key-in-use", json.loads(doc)["type"])
        self.assertEqual(hdrs.get("Retry-After"), "1")
        th.join(timeout=30)
        self.assertEqual(result["first"][0], 201)
        again = self.post(users, body, key)
        self.assertEqual((again[0], again[2]), (201, result["first"][2]))

    def test_answers_survive_a_restart_and_secrets_in_them_are_sealed(self):
        n = self.node
        key = str(uuid.uuid4())
        keys = f"/v1/tenants/{self.t['id']}/api-keys"
        first = self.post(keys, {"name": "ci", "roles": ["viewer"]}, key)
        self.assertEqual(first[0], 201, first[2])
        secret = json.loads(first[2])["key"]
        self.assertEqual(n.stop()[0], 0)
        same_credential = n.admin_key  # keys are per credential
        type(self).node = n = hardening.start(self.dir, self.ARGS)
        n.admin_key = same_credential
        again = self.post(keys, {"name": "ci", "roles": ["viewer"]}, key)
        self.assertEqual((again[0], again[2]), (201, first[2]))
        listed = n.json("GET", keys)[2]["data"]
        self.assertEqual(sum(1 for k in listed if k["name"] == "ci"), 1)
        if os.environ.get("COLONY_TEST_STORE", "sqlite") == "sqlite":
            with hardening.sqlite_db(self.dir) as db:
                bodies = [r[0] for r in db.execute("SELECT body FROM idempotency_keys")]
            self.assertTrue(bodies)
            self.assertFalse(any(secret in b or "k1@example.com" in b for b in bodies))

    @unittest.skipUnless(os.environ.get("COLONY_TEST_STORE", "sqlite") == "sqlite", "reads the SQLite file")
    def test_a_change_committed_without_its_stored_answer_is_answered_from_the_entity(self):
        # As after a crash between the entity's commit (which marks the key
        # committed in its transaction) and the stored answer.
        users = f"/v1/tenants/{self.t['id']}/users"
        key = str(uuid.uuid4())
        first = self.post(users, {"email": "lost@example.com"}, key)
        self.assertEqual(first[0], 201)
        with hardening.sqlite_db(self.dir) as db:
            rows = db.execute("SELECT ref_kind, ref_id FROM idempotency_keys WHERE state = 'done' AND ref_id = ?",
                              (json.loads(first[2])["id"],)).fetchall()
            self.assertEqual(rows, [(2, json.loads(first[2])["id"])])  # marked by the commit
            db.execute("UPDATE idempotency_keys SET state = 'committed', body = '' WHERE ref_id = ?",
                       (json.loads(first[2])["id"],))
        again = self.post(users, {"email": "lost@example.com"}, key)
        self.assertEqual(again[0], 201, again[2])
        self.assertEqual(json.loads(again[2]), json.loads(first[2]))
        self.assertEqual(again[1]["Location"], first[1]["Location"])
        self.assertEqual(again[1].get("Idempotency-Replayed"), "true")


class IdempotencyUnknownOutcome(hardening.NodeCase):
    """A change that got no answer within the request timeout may still
    commit: its key stays taken, so a retry never applies it twice."""

    ARGS = ["--debug.fault-injection", "true", "--request-timeout", "1s"]
    PLAN = "pro"
    post = IdempotencyKeys.post

    def test_a_retry_after_a_timed_out_change_gets_the_change_not_a_second_one(self):
        users = f"/v1/tenants/{self.t['id']}/users"
        key = str(uuid.uuid4())
        body = {"email": "late@example.com"}
        t0 = time.time()
        first = self.post(users, body, key, extra={"X-Colony-Fault": "stall=2500"})
        self.assertEqual(first[0], 503, first[2])  # the wait ended after 1 s; the change still runs
        again = self.post(users, body, key)
        self.assertEqual(again[0], 409, again[2])  # not released: it may yet commit
        self.assertIn("idempotency-key-in-use", json.loads(again[2])["type"])
        time.sleep(max(0.0, 3.5 - (time.time() - t0)))  # the stalled creation has committed by now
        again = self.post(users, body, key)
        self.assertEqual(again[0], 201, again[2])  # answered from the commit
        self.assertEqual(again[1].get("Idempotency-Replayed"), "true")
        listed = self.node.json("GET", users + "?limit=500")[2]["data"]
        self.assertEqual([u["id"] for u in listed if u["email"] == "late@example.com"], [json.loads(again[2])["id"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
