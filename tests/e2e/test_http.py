#!/usr/bin/env python3
"""End-to-end tests of the HTTP edge: CORS, limits, bad input, non-UTF-8, the
wire, crashes, operational endpoints, on one node of the store under test
(colony_testkit.api_case).

Environment: COLONYD, COLONY_TEST_STORE (sqlite|postgres), COLONY_TEST_PG_DSN_FILE.
"""
import http.client
import json
import socket
import time
import unittest
import uuid

from colony_testkit import NodeCase


class Http(NodeCase):
    def test_cors_by_allow_list(self):
        n = self.node
        # Preflight from an allowed origin: 204 with the grant, echoing the origin.
        status, hdrs, _ = n.request("OPTIONS", "/v1/tenants", headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204)
        self.assertEqual(hdrs["Access-Control-Allow-Origin"], "https://app.example.com")
        self.assertIn("POST", hdrs["Access-Control-Allow-Methods"])
        self.assertIn("Content-Type", hdrs["Access-Control-Allow-Headers"])
        self.assertEqual(hdrs["Vary"], "Origin")
        # A real request from an allowed origin carries the grant and exposes the useful headers.
        status, hdrs, _ = n.request("GET", "/livez", headers={"Origin": "http://localhost:3000"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Access-Control-Allow-Origin"], "http://localhost:3000")
        self.assertIn("ETag", hdrs["Access-Control-Expose-Headers"])
        # Another origin: no grant on requests, 403 problem on preflight; no Origin: no CORS headers.
        status, hdrs, _ = n.request("GET", "/livez", headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 200)
        self.assertNotIn("Access-Control-Allow-Origin", hdrs)
        status, hdrs, payload = n.request("OPTIONS", "/v1/tenants", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"})
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(payload)["type"], "https://colony.dev/problems/cors-origin-not-allowed")
        self.assertNotIn("Access-Control-Allow-Origin", hdrs)
        status, hdrs, _ = n.request("GET", "/livez")
        self.assertNotIn("Access-Control-Allow-Origin", hdrs)

    def test_request_line_and_header_count_limits(self):
        """414 for a request line over http.request-line-limit (8 KiB), whether or not it also
        passes the header-size limit; 431 for more than http.header-count-limit (100) fields."""
        for length in (9000, 20000):  # under and over http.header-limit (16 KiB)
            conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
            conn.request("GET", "/v1/tenants/" + "a" * length)
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 414, length)
            doc = json.loads(body)
            self.assertEqual(doc["type"], "https://colony.dev/problems/uri-too-long")
            self.assertEqual(doc["requestId"], resp.getheader("X-Request-Id"))
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        conn.request("GET", "/livez", headers={f"X-Many-{i}": "1" for i in range(101)})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        self.assertEqual(resp.status, 431)
        self.assertIn("more than 100 header fields", doc["detail"])
        conn.close()
        status, _, _ = self.node.request("GET", "/livez", headers={f"X-Some-{i}": "1" for i in range(90)})
        self.assertEqual(status, 200)
        status, _, _ = self.node.request("GET", "/v1/tenants/" + "a" * 7000)
        self.assertNotEqual(status, 414)

    def test_bad_input_gets_problems_never_500(self):
        n = self.node
        t = self.tenant()
        status, hdrs, payload = n.request("POST", "/v1/tenants", raw=b"{not json", headers={"Content-Type": "application/json"})
        self.assertProblem((status, hdrs, json.loads(payload)), 400, "malformed-request")
        doc = self.assertProblem(n.json("POST", "/v1/tenants", {"slug": 42, "name": "x"}), 400)
        self.assertEqual(doc["errors"][0]["field"], "slug")
        doc = self.assertProblem(n.json("POST", "/v1/tenants", {"slug": "okay-slug", "name": "x", "colour": "red"}), 400)
        self.assertEqual(doc["errors"][0]["field"], "colour")
        doc = self.assertProblem(n.json("POST", "/v1/tenants", {"slug": "No", "name": "x"}), 400, "validation-error")
        self.assertEqual(doc["errors"][0]["field"], "slug")
        self.assertProblem(n.json("POST", "/v1/tenants", ["a"]), 400)
        status, hdrs, payload = n.request("POST", "/v1/tenants", raw=b'{"slug":"x"}', headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        big = b'{"name":"' + b"x" * (1024 * 1024 + 10) + b'"}'
        status, hdrs, payload = n.request("POST", "/v1/tenants", raw=big, headers={"Content-Type": "application/json"})
        self.assertEqual(status, 413)
        self.assertEqual(json.loads(payload)["status"], 413)
        self.assertProblem(n.json("GET", "/v1/tenants/NOT_AN_ID"), 400, "invalid-id")
        self.assertProblem(n.json("GET", f"/v1/tenants/{t['id']}/users/123"), 400, "invalid-id")
        self.assertProblem(n.json("GET", "/v1/tenants/" + str(uuid.uuid4())), 404, "not-found")
        self.assertProblem(n.json("GET", "/v1/tenants/no-such-slug"), 404, "not-found")
        self.assertProblem(n.json("GET", f"/v1/tenants/{t['id']}/users?cursor=bm90LWEtY3Vyc29y"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/nothing-here"), 404, "not-found")
        status, hdrs, doc = n.json("DELETE", "/v1/tenants")
        self.assertEqual(status, 405)
        self.assertEqual(set(hdrs["Allow"].split(", ")), {"GET", "POST"})
        self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"status": "active"}), 400)
        self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"name": "x"}, {"If-Match": "garbage"}), 412)
        # Nothing half-written: the tenant is unchanged by all of the above.
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[2]["version"], 1)

    def test_paths_and_parameters_that_are_not_utf8_get_problems_not_500(self):
        """Regression from fuzz_http: a 404 quoting a non-UTF-8 path made the JSON encoder throw (500)."""
        for path in (b"/v1/t\xa2\x91ants/acme/api-keys", b"/v1/tenants?plan=\xff\xfe", b"/v1/tenants/\xc0\xaf"):
            with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
                          self.node.admin_key.encode() + b"\r\n\r\n")
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            status = int(head.split(b" ")[1])
            self.assertIn(status, (400, 404), (path, answer))
            doc = json.loads(body)
            self.assertEqual(doc["status"], status)
            self.assertIn("\ufffd", doc["detail"])

    def raw_exchange(self, request, answers, heads=()):
        """Sends raw bytes; reads `answers` responses (by Content-Length; those numbered in `heads` answer a HEAD);
        returns [(status line, fields, body)]."""
        out = []
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
            s.sendall(request)
            buf = b""
            while len(out) < answers:
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, (request, buf, out))
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(": ")
                    self.assertTrue(sep and name.strip() == name, line)
                    self.assertNotIn(name.lower(), fields, lines)  # each field once
                    fields[name.lower()] = value
                length = 0 if len(out) in heads or lines[0].split(" ")[1] in ("204", "304") else \
                    int(fields["content-length"])
                while len(buf) < length:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk)
                    buf += chunk
                out.append((lines[0], fields, buf[:length]))
                buf = buf[length:]
            s.settimeout(0.3)
            try:
                self.assertEqual(s.recv(65536) if "close" in out[-1][1].get("connection", "") else b"", b"")
            except socket.timeout:
                pass
        return out

    def test_the_answer_on_the_wire_head_http10_204_and_pipelining(self):
        """The node writes its answers itself (status line, fields, body): checked byte-level here."""
        auth = b"Authorization: Bearer " + self.node.admin_key.encode() + b"\r\n"
        t = self.tenant()
        get = b"GET /v1/tenants/" + t["id"].encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
        [(line, fields, body)] = self.raw_exchange(get, 1)
        self.assertEqual(line, "HTTP/1.1 200 OK")
        self.assertEqual(json.loads(body)["id"], t["id"])
        self.assertEqual(int(fields["content-length"]), len(body))
        self.assertEqual(fields["content-type"], "application/json")
        self.assertEqual(fields["etag"], '"1"')
        self.assertNotIn("connection", fields)  # HTTP/1.1: kept open unless told
        for name in ("server", "x-request-id", "x-content-type-options", "referrer-policy", "x-frame-options",
                     "cache-control"):
            self.assertIn(name, fields)
        # HEAD: the GET's fields and Content-Length, no body (the next answer on the connection is intact).
        head = get.replace(b"GET ", b"HEAD ", 1)
        (hline, hfields, hbody), (gline, _, gbody) = self.raw_exchange(head + get, 2, heads=(0,))
        self.assertEqual((hline, hbody), ("HTTP/1.1 200 OK", b""))
        self.assertEqual(int(hfields["content-length"]), len(body))
        self.assertEqual((gline, json.loads(gbody)["id"]), ("HTTP/1.1 200 OK", t["id"]))
        # Three requests pipelined on one connection: three answers in order.
        answers = self.raw_exchange(get + b"GET /livez HTTP/1.1\r\nHost: x\r\n" + auth +
                                    b"\r\n" + get, 3)
        self.assertEqual([a[0] for a in answers], ["HTTP/1.1 200 OK"] * 3)
        self.assertEqual(json.loads(answers[2][2])["id"], t["id"])
        # HTTP/1.0: closed unless keep-alive is asked for, and then said so.
        [(line, fields, _)] = self.raw_exchange(get.replace(b"HTTP/1.1", b"HTTP/1.0"), 1)
        self.assertEqual(line, "HTTP/1.0 200 OK")
        self.assertNotIn("keep-alive", fields.get("connection", ""))
        ka = get.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"Host: x\r\n", b"Host: x\r\nConnection: keep-alive\r\n")
        first, second = self.raw_exchange(ka + ka, 2)
        self.assertEqual(first[1]["connection"], "keep-alive")
        self.assertEqual(second[0], "HTTP/1.0 200 OK")
        # HTTP/1.1 with Connection: close: said back, then closed.
        [(_, fields, _)] = self.raw_exchange(get.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"), 1)
        self.assertEqual(fields["connection"], "close")
        # 204 (a CORS preflight): no Content-Length, no body, and the connection goes on.
        pre = (b"OPTIONS /v1/tenants HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
               b"Access-Control-Request-Method: POST\r\n\r\n")
        (line, fields, body), (after, _, _) = self.raw_exchange(pre + get, 2)
        self.assertEqual((line, body), ("HTTP/1.1 204 No Content", b""))
        self.assertNotIn("content-length", fields)
        self.assertEqual(fields["access-control-allow-origin"], "https://app.example.com")
        self.assertEqual(after, "HTTP/1.1 200 OK")
        # A problem answer: its own status line and media type.
        [(line, fields, body)] = self.raw_exchange(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        self.assertEqual(line, "HTTP/1.1 404 Not Found")
        self.assertEqual(fields["content-type"], "application/problem+json")
        self.assertEqual(json.loads(body)["status"], 404)

    def test_crash_answers_500_with_request_id_and_entity_recovers(self):
        n = self.node
        t = self.tenant()
        doc = self.assertProblem(n.json("GET", f"/v1/tenants/{t['id']}", headers={"X-Colony-Fault": "crash", "X-Request-Id": "crash-req-1"}), 500, "internal-error")
        self.assertEqual(doc["requestId"], "crash-req-1")
        self.assertIn("crash-req-1", doc["detail"])
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[0], 200)
        metrics = n.request("GET", "/metrics")[2].decode()
        crashes = [l for l in metrics.splitlines() if l.startswith('colony_actor_crashes_total{kind="tenant"}')]
        self.assertTrue(crashes and float(crashes[0].split()[-1]) >= 1, crashes)

    def test_operational_endpoints(self):
        n = self.node
        self.assertEqual(n.request("GET", "/livez")[0], 200)
        status, _, body = n.request("GET", "/readyz?verbose")
        self.assertEqual(status, 200)
        self.assertIn(b"[+]store", body)
        status, hdrs, body = n.request("GET", "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        for name in ("colony_http_requests_total", "colony_http_request_duration_seconds_bucket",
                     "colony_entities_live", "colony_entity_activations_total", "colony_entity_passivations_total",
                     "colony_actor_crashes_total", "colony_store_commit_duration_seconds", "colony_store_commit_batch_size"):
            self.assertIn(name, text)
        self.assertIn('route="/v1/tenants"', text)
        status, _, doc = n.json("GET", "/openapi.json")
        self.assertEqual(status, 200)
        self.assertTrue(doc["openapi"].startswith("3.1"))
        status, hdrs, _ = n.request("GET", "/livez", headers={"X-Request-Id": "abc-123"})
        self.assertEqual(hdrs["X-Request-Id"], "abc-123")
        self.assertEqual(hdrs["X-Content-Type-Options"], "nosniff")
        deadline = time.time() + 5  # the access line is written right after the answer is sent
        while "request_id=abc-123" not in n.logs() and time.time() < deadline:
            time.sleep(0.02)
        self.assertIn("request_id=abc-123", n.logs())


if __name__ == "__main__":
    unittest.main(verbosity=2)
