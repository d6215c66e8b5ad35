"""Kafka for the end-to-end tests: the project's mock cluster program
(colony-kafka-mock, librdkafka's mock brokers on loopback) and kcat as an
independent client."""
import os
import re
import subprocess

KAFKA_MOCK = os.environ.get("COLONY_KAFKA_MOCK", "build/bin/colony-kafka-mock")
PROTO_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "protocol", "proto")


class KafkaMock:
    def __init__(self, brokers=3, topics=(), partitions=None):
        args = [KAFKA_MOCK, "--brokers", str(brokers)]
        if partitions:
            args += ["--partitions", str(partitions)]
        for t in topics:
            args += ["--topic", t]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("bootstrap="):
            raise RuntimeError("colony-kafka-mock did not start: " + line)
        self.bootstrap = line[len("bootstrap="):]

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"{line}: {answer}")

    def down(self, broker=-1):
        self.command(f"down {broker}")

    def up(self, broker=-1):
        self.command(f"up {broker}")

    def fail_requests(self, api_key, error_code, count):
        """The next `count` requests of an API (0: Produce) fail with a Kafka error code."""
        self.command(f"errors {api_key} {error_code} {count}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)


_RECORD = re.compile(rb"<<R>>P=(-?\d+)\|O=(\d+)\|K=(.*?)\|H=(.*?)\|L=(-?\d+)\|V=", re.S)


def consume(bootstrap, topic, timeout=30):
    """Every message of `topic` (kcat, from the beginning to the end), as dicts
    with partition, offset, key, headers and value (bytes)."""
    out = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "<<R>>P=%p|O=%o|K=%k|H=%h|L=%S|V=%s\n"],
        capture_output=True, timeout=timeout, check=True).stdout
    records, pos = [], 0
    while True:
        m = _RECORD.search(out, pos)
        if not m:
            break
        length = int(m.group(5))
        start = m.end()
        value = out[start:start + max(length, 0)]
        headers = {}
        for part in m.group(4).decode().split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                headers[k] = v
        records.append({"partition": int(m.group(1)), "offset": int(m.group(2)), "key": m.group(3).decode(),
                        "headers": headers, "value": value})
        pos = start + max(length, 0)
    return records


def decode_event(value):
    """A colony.v1.Event (protobuf bytes) decoded by protoc into its text format."""
    return subprocess.run(
        ["protoc", "-I", PROTO_DIR, "-I", "/usr/include", "--decode=colony.v1.Event", "colony/v1/event.proto"],
        input=value, capture_output=True, check=True).stdout.decode()


def produce(bootstrap, topic, key, value, headers=()):
    """One message (bytes or str) produced by kcat."""
    if isinstance(value, str):
        value = value.encode()
    import tempfile
    with tempfile.NamedTemporaryFile() as f:
        f.write(value)
        f.flush()
        args = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-k", key]
        for h in headers:
            args += ["-H", h]
        subprocess.run(args + [f.name], check=True, timeout=30, capture_output=True)


def produce_many(bootstrap, topic, messages):
    """(key, value) pairs of one-line text, produced by one kcat in order."""
    lines = "".join(f"{k}\t{v}\n" for k, v in messages)
    assert all("\t" not in k and "\n" not in v and "\t" not in v for k, v in messages)
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\t"], input=lines.encode(), check=True,
                   timeout=60, capture_output=True)


def encode_command(text):
    """A colony.v1.Command in protobuf bytes, encoded by protoc from its text format."""
    return subprocess.run(
        ["protoc", "-I", PROTO_DIR, "-I", "/usr/include", "--encode=colony.v1.Command", "colony/v1/command.proto"],
        input=text.encode(), capture_output=True, check=True).stdout
