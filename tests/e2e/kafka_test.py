#!/usr/bin/env python3
"""End-to-end tests of the Kafka integration: colonyd against the project's
mock Kafka cluster (librdkafka's mock brokers), checked with kcat.

Environment: COLONYD, COLONY_KAFKA_MOCK (paths to the binaries). The store is
SQLite in a fresh data dir per node, so the outbox holds only this test's events.
"""
import json
import shutil
import tempfile
import time
import unittest
import uuid

from e2e_test import Node
from kafka_support import KafkaMock, consume, decode_event

EVENTS = "colony.events.v1"


def wait_until(predicate, timeout=30, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %s s" % timeout)


def metric(node, name):
    body = node.request("GET", "/metrics")[2].decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Relay(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="colony-kafka-")
        self.kafka = KafkaMock(brokers=3, topics=[EVENTS])
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            if n.proc.poll() is None:
                n.stop()
        self.kafka.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra):
        node = Node(self.dir, ["--kafka-brokers", self.kafka.bootstrap, *extra])
        self.nodes.append(node)
        return node

    def feed(self, node):
        status, _, doc = node.json("GET", "/v1/events?limit=1000")
        self.assertEqual(status, 200)
        return [item["event"] for item in doc["data"]]

    def drained(self, node):
        return lambda: metric(node, "colony_outbox_backlog_events") == 0 and metric(
            node, "colony_events_published_total") == len(self.feed(node))

    def test_http_write_becomes_a_kafka_message_with_key_headers_and_protobuf_value(self):
        n = self.start()
        rid = "req-" + uuid.uuid4().hex
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "relay-" + uuid.uuid4().hex[:8], "name": "R"},
                              {"X-Request-Id": rid})
        self.assertEqual(status, 201)
        status, _, u = n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "k@example.com"})
        self.assertEqual(status, 201)
        wait_until(self.drained(n))

        records = consume(self.kafka.bootstrap, EVENTS)
        self.assertEqual(len(records), 2)
        by_type = {r["headers"]["ce_type"]: r for r in records}
        created = by_type["tenant.created"]
        self.assertEqual(created["key"], t["id"])
        self.assertEqual(created["headers"]["content-type"], "application/protobuf; proto=colony.v1.Event")
        self.assertEqual(created["headers"]["ce_specversion"], "1.0")
        self.assertEqual(created["headers"]["ce_source"], "/colony/tenants/" + t["id"])
        feed = self.feed(n)
        self.assertEqual(created["headers"]["ce_id"], feed[0]["id"])
        text = decode_event(created["value"])
        self.assertIn(f'id: "{feed[0]["id"]}"', text)
        self.assertIn('type: "tenant.created"', text)
        self.assertIn(f'request_id: "{rid}"', text)
        self.assertIn(f'slug: "{t["slug"]}"', text)
        user = by_type["user.created"]
        self.assertEqual(user["key"], u["id"])
        self.assertIn('email: "k@example.com"', decode_event(user["value"]))
        self.assertIn("[+]events relay: kafka reachable", n.request("GET", "/readyz?verbose")[2].decode())

    def test_brokers_down_backlog_grows_then_drains_in_order_per_key(self):
        n = self.start("--kafka.value-format", "json")
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "down-" + uuid.uuid4().hex[:8], "name": "D", "plan": "pro"})
        self.assertEqual(status, 201)
        wait_until(self.drained(n))

        self.kafka.down()
        users = []
        for i in range(5):
            status, _, u = n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": f"u{i}@example.com"})
            self.assertEqual(status, 201)
            users.append(u)
        for i in range(10):  # many versions of one key while the brokers are away
            self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"name": f"D{i}"})[0], 200)
        backlog = wait_until(lambda: metric(n, "colony_outbox_backlog_events") == 15 and
                             metric(n, "colony_kafka_brokers_up") == 0, timeout=20)
        self.assertTrue(backlog)
        time.sleep(1.2)
        self.assertGreaterEqual(metric(n, "colony_outbox_oldest_event_age_seconds"), 1.0)
        ready = n.request("GET", "/readyz?verbose")
        self.assertEqual(ready[0], 200)  # the API still works; the events wait
        self.assertIn("[!]events relay: kafka unreachable", ready[2].decode())
        self.assertIn("backlog 15 events", ready[2].decode())

        self.kafka.up()
        wait_until(self.drained(n), timeout=60)
        self.assertEqual(metric(n, "colony_kafka_brokers_up"), 1)

        records = consume(self.kafka.bootstrap, EVENTS)
        ids = [r["headers"]["ce_id"] for r in records]
        feed = self.feed(n)
        self.assertEqual(set(ids), {e["id"] for e in feed})  # nothing lost
        self.assertEqual(len(records), len(feed))
        # One key's events arrive in one partition, in version order.
        tenant_records = sorted((r for r in records if r["key"] == t["id"]), key=lambda r: r["offset"])
        self.assertEqual(len({r["partition"] for r in tenant_records}), 1)
        versions = [json.loads(r["value"])["aggregateVersion"] for r in tenant_records]
        self.assertEqual(versions, sorted(versions))
        self.assertEqual(versions[-1], 11)
        self.assertTrue(all(r["headers"]["content-type"] == "application/json" for r in records))
        names = [json.loads(r["value"])["tenantChanged"]["state"]["name"] for r in tenant_records]
        self.assertEqual(names[-1], "D9")

    def test_retriable_broker_errors_neither_lose_nor_duplicate(self):
        n = self.start()
        # NOT_ENOUGH_REPLICAS (19) and REQUEST_TIMED_OUT (7) on the next Produce requests.
        self.kafka.fail_requests(0, 19, 3)
        self.kafka.fail_requests(0, 7, 2)
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "err-" + uuid.uuid4().hex[:8], "name": "E"})
        self.assertEqual(status, 201)
        for i in range(5):
            self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"name": f"E{i}"})[0], 200)
        wait_until(self.drained(n), timeout=60)
        records = consume(self.kafka.bootstrap, EVENTS)
        ids = [r["headers"]["ce_id"] for r in sorted(records, key=lambda r: r["offset"])]
        self.assertEqual(ids, [e["id"] for e in self.feed(n)])  # each once, in commit order

    def test_events_written_while_brokers_are_down_survive_a_restart(self):
        n = self.start()
        self.kafka.down()
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "rst-" + uuid.uuid4().hex[:8], "name": "R"})
        self.assertEqual(status, 201)
        wait_until(lambda: metric(n, "colony_outbox_backlog_events") == 1)
        code, _ = n.stop()
        self.assertEqual(code, 0)

        self.kafka.up()
        n2 = self.start()
        wait_until(self.drained(n2))
        records = consume(self.kafka.bootstrap, EVENTS)
        self.assertEqual([r["key"] for r in records], [t["id"]])
        self.assertEqual(records[0]["headers"]["ce_type"], "tenant.created")


class RelayOff(unittest.TestCase):
    def test_without_brokers_the_relay_is_off_and_says_so(self):
        d = tempfile.mkdtemp(prefix="colony-kafka-")
        try:
            n = Node(d)
            self.assertEqual(n.json("POST", "/v1/tenants", {"slug": "off-" + uuid.uuid4().hex[:8], "name": "O"})[0], 201)
            self.assertIn("[+]events relay: off", n.request("GET", "/readyz?verbose")[2].decode())
            self.assertEqual(len(n.json("GET", "/v1/events")[2]["data"]), 1)
            self.assertEqual(n.stop()[0], 0)
            self.assertIn("event relay off", n.logs())
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
