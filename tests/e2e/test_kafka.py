#!/usr/bin/env python3
"""End-to-end tests of the Kafka integration: colonyd against the project's
mock Kafka cluster (librdkafka's mock brokers), checked with kcat.

Environment: COLONYD, COLONY_KAFKA_MOCK (paths to the binaries). The store is
SQLite in a fresh data dir per node, so the outbox holds only this test's events.
"""
import http.client
import json
import shutil
import tempfile
import threading
import time
import unittest
import uuid

from colony_testkit import Node
from kafka_support import KafkaMock, consume, decode_event, encode_command, produce

EVENTS = "colony.events.v1"
COMMANDS = "colony.commands.v1"
RESULTS = "colony.command-results.v1"
DLQ = "colony.commands.dlq.v1"


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


class KafkaCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="colony-kafka-")
        self.kafka = KafkaMock(brokers=3, topics=[EVENTS, COMMANDS, RESULTS, DLQ])
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



class Relay(KafkaCase):
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
        # The age of the oldest waiting event grows while the brokers stay away.
        wait_until(lambda: metric(n, "colony_outbox_oldest_event_age_seconds") >= 1.0, timeout=10)
        ready = n.request("GET", "/readyz?verbose")
        self.assertEqual(ready[0], 200)  # the API still works; the events wait
        self.assertIn("[!]events relay: kafka unreachable", ready[2].decode())
        self.assertIn("backlog 15 events", ready[2].decode())
        # The console's stores view reads the same numbers.
        stores = n.json("GET", "/v1/admin/stores")[2]
        self.assertEqual(stores["totals"]["outboxBacklog"], 15, stores)
        self.assertGreaterEqual(stores["totals"]["outboxOldestAgeSeconds"], 1.0)
        [mine] = stores["nodes"]
        self.assertEqual((mine["kafka"]["configured"], mine["kafka"]["brokersUp"]), (True, False))

        self.kafka.up()
        wait_until(self.drained(n), timeout=60)
        self.assertEqual(metric(n, "colony_kafka_brokers_up"), 1)
        stores = n.json("GET", "/v1/admin/stores")[2]
        self.assertEqual(stores["totals"]["outboxBacklog"], 0)
        self.assertTrue(stores["nodes"][0]["kafka"]["brokersUp"])
        self.assertEqual(stores["nodes"][0]["outbox"]["published"], len(self.feed(n)))

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


class Commands(KafkaCase):
    """Kafka-driven integrations: commands in, results and dead letters out."""

    def results(self, count, timeout=60):  # the first poll waits for the consumer group to form
        def enough():
            got = consume(self.kafka.bootstrap, RESULTS)
            return got if len(got) >= count else None
        return {r["key"]: [json.loads(x["value"]) for x in enough_list if x["key"] == r["key"]]
                for enough_list in [wait_until(enough, timeout=timeout)] for r in enough_list}

    def send(self, command, key=None, raw=None, headers=()):
        # Keyed by tenant: one tenant's commands share a partition and apply in order.
        produce(self.kafka.bootstrap, COMMANDS, key or command.get("tenantId", "none"),
                raw if raw is not None else json.dumps(command), headers)

    def test_commands_are_applied_once_with_results_and_dead_letters(self):
        n = self.start()
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "cmd-" + uuid.uuid4().hex[:8], "name": "C"})
        self.assertEqual(status, 201)
        tid = t["id"]
        self.send({"commandId": "c-create", "tenantId": t["slug"],
                   "createUser": {"email": "kafka@example.com", "name": "Kaf"}})
        self.send({"commandId": "c-create", "tenantId": t["slug"],  # the same command again
                   "createUser": {"email": "kafka@example.com", "name": "Kaf"}})
        self.send({"commandId": "c-bad-email", "tenantId": tid, "createUser": {"email": "not-an-email"}})
        self.send({}, key="poison", raw="{this is not json")
        self.send({"commandId": "c-unknown-field", "tenantId": tid, "colour": "red"})
        # Hostile values pass the same JSON gate as HTTP bodies: dead letters
        # at once, and the consumer goes on (the commands below still apply).
        deep = '{"commandId":"c-deep","tenantId":"%s","createUser":{"email":"d@example.com","attributes":{"a":%s}}}' % (
            tid, "[" * 100000 + "]" * 100000)
        self.send({}, key="deep", raw=deep)
        self.send({}, key="dupkeys", raw='{"commandId":"c-dup","tenantId":"%s","createUser":{"email":"x@example.com",'
                  '"roles":["member"],"roles":["owner"]}}' % tid)
        res = self.results(3)
        self.assertEqual([r["status"] for r in res["c-create"]], ["ok", "duplicate"])
        user = res["c-create"][0]["entity"]
        self.assertEqual(user["email"], "kafka@example.com")
        self.assertEqual(res["c-bad-email"][0]["status"], "problem")
        self.assertEqual(res["c-bad-email"][0]["problem"]["status"], 400)
        users = n.json("GET", f"/v1/tenants/{tid}/users")[2]["data"]
        self.assertEqual([u["email"] for u in users], ["kafka@example.com"])  # applied once
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}/usage")[2]["usage"]["users"], 1)

        dead = wait_until(lambda: (lambda d: d if len(d) >= 4 else None)(consume(self.kafka.bootstrap, DLQ)))
        by_key = {d["key"]: d for d in dead}
        self.assertIn("deeper than 64", by_key["deep"]["headers"]["colony-error"])
        self.assertIn("duplicate key", by_key["dupkeys"]["headers"]["colony-error"])
        self.assertEqual(by_key["poison"]["value"], b"{this is not json")
        self.assertEqual(by_key["poison"]["headers"]["colony-error-stage"], "parse")
        self.assertIn("colony.v1.Command", by_key["poison"]["headers"]["colony-error"])
        self.assertIn("colour", by_key[tid]["headers"]["colony-error"])

        # Update, plan change, usage, suspension; one as protobuf (encoded by protoc).
        self.send({"commandId": "c-update", "tenantId": tid,
                   "updateUser": {"userId": user["id"], "patch": {"name": "Kafka"}}})
        self.send({"commandId": "c-plan", "tenantId": tid, "changePlan": {"plan": "pro"}})
        self.send({"commandId": "c-track", "tenantId": tid, "trackActivity": {"apiCalls": 40, "aiRequests": 2}})
        self.send({"commandId": "c-track-too-much", "tenantId": tid, "trackActivity": {"aiRequests": 100000}})
        proto = encode_command(f'command_id: "c-suspend" tenant_id: "{tid}" suspend_tenant {{ reason: "kafka" }}')
        self.send({}, key=tid, raw=proto, headers=["content-type=application/protobuf"])
        res = self.results(8)
        self.assertEqual(res["c-update"][0]["entity"]["name"], "Kafka")
        self.assertEqual(res["c-plan"][0]["entity"]["plan"], "pro")
        self.assertEqual(res["c-track"][0]["entity"]["usage"]["apiCallsThisMonth"], 40)
        self.assertEqual(res["c-track-too-much"][0]["problem"]["status"], 403)
        self.assertEqual(res["c-suspend"][0]["entity"]["status"], "suspended")
        cur = n.json("GET", f"/v1/tenants/{tid}")[2]
        self.assertEqual((cur["status"], cur["statusReason"], cur["plan"]), ("suspended", "kafka", "pro"))
        self.assertEqual(cur["usage"]["aiRequestsThisMonth"], 2)
        # The same rules as HTTP: a suspended tenant's users cannot be written.
        self.send({"commandId": "c-delete", "tenantId": tid, "deleteUser": {"userId": user["id"]}})
        res = self.results(9)
        self.assertEqual(res["c-delete"][0]["problem"]["status"], 403)
        # The consumer's lag per assigned partition (reported every 5 s): all
        # of the commands topic's partitions, nothing left behind once applied.
        def lag_reported():
            k = n.json("GET", "/v1/admin/stores")[2]["nodes"][0]["kafka"]
            parts = {(x["topic"], x["partition"]) for x in k["consumerLag"]}
            return k if parts and k["consumerLagTotal"] == 0 else None
        k = wait_until(lag_reported, timeout=20)
        self.assertEqual({x["topic"] for x in k["consumerLag"]}, {COMMANDS})
        self.assertTrue(k["brokersUp"])
        # Events carry the command id as request id.
        events = [i["event"] for i in n.json("GET", f"/v1/tenants/{tid}/events")[2]["data"]]
        self.assertIn("c-create", [e["requestId"] for e in events])

    def test_commands_sent_while_the_node_is_down_are_applied_after_start(self):
        n = self.start()
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "late-" + uuid.uuid4().hex[:8], "name": "L"})
        self.assertEqual(status, 201)
        self.assertEqual(n.stop()[0], 0)
        for i in range(3):
            self.send({"commandId": f"late-{i}", "tenantId": t["id"], "createUser": {"email": f"l{i}@example.com"}})
        n2 = self.start()
        res = self.results(3)
        self.assertEqual(sorted(res), ["late-0", "late-1", "late-2"])
        self.assertTrue(all(v[0]["status"] == "ok" for v in res.values()))
        self.assertEqual(n2.json("GET", f"/v1/tenants/{t['id']}/usage")[2]["usage"]["users"], 3)

    def test_the_lag_shows_while_commands_wait_behind_a_stalled_user(self):
        n = self.start("--debug.fault-injection", "true")
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "lag-" + uuid.uuid4().hex[:8], "name": "L"})
        self.assertEqual(status, 201)
        tid = t["id"]
        status, _, u = n.json("POST", f"/v1/tenants/{tid}/users", {"email": "lag@example.com", "name": "Lag"})
        self.assertEqual(status, 201, u)
        uid = u["id"]

        def update(cid, name):
            self.send({"commandId": cid, "tenantId": tid, "updateUser": {"userId": uid, "patch": {"name": name}}})

        def lag():
            k = n.json("GET", "/v1/admin/stores")[2]["nodes"][0]["kafka"]
            return k["consumerLagTotal"], k["consumerLag"]

        # The group formed and the consumer is at the end of the topic.
        update("lag-warm", "Warm")
        self.assertEqual(self.results(1)["lag-warm"][0]["status"], "ok")
        # The user's actor blocks for 8 s on an HTTP update (fault injection):
        # the consumer's next command waits behind it, the five after that in Kafka.
        stalled = {}

        def stall():
            conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=30)
            conn.request("PATCH", f"/v1/tenants/{tid}/users/{uid}", body=json.dumps({"name": "Stalled"}),
                         headers={"Authorization": "Bearer " + n.admin_key, "Content-Type": "application/json",
                                  "X-Colony-Fault": "stall=8000"})
            stalled["status"] = conn.getresponse().status
            conn.close()
        th = threading.Thread(target=stall)
        th.start()
        time.sleep(0.3)
        for i in range(6):
            update(f"lag-{i}", f"N{i}")
        # Reported as soon as the first is applied: the report (every 5 s) is
        # due by then, and only a consumer between messages makes one. The
        # five behind it, on the tenant's partition.
        total, parts = wait_until(lambda: (lambda v: v if v[0] > 0 else None)(lag()), timeout=20)
        self.assertEqual(total, 5, parts)
        self.assertEqual([p["lag"] for p in parts if p["lag"] > 0], [5], parts)
        th.join(timeout=30)
        self.assertEqual(stalled.get("status"), 200, stalled)
        res = self.results(7)
        self.assertEqual({k: v[0]["status"] for k, v in res.items() if k.startswith("lag-")},
                         {"lag-warm": "ok", **{f"lag-{i}": "ok" for i in range(6)}})
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}/users/{uid}")[2]["name"], "N5")  # in order
        wait_until(lambda: lag()[0] == 0, timeout=15)


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
