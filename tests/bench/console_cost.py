"""Figure 14 (issue #17): what the console costs its node. The node's own CPU
time (utime + stime from /proc/PID/stat) over equal windows with no viewer
and with 10 viewers, alternating twice. Each viewer holds what a console tab
holds: one stream of snapshots and events (GET /v1/admin/stream), read as it
arrives. The figure is the CPU the viewers add, in % of one core."""
import os
import socket
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


class Viewer(threading.Thread):
    """One console tab's stream; counts the snapshots it received."""

    def __init__(self, port, key):
        super().__init__(daemon=True)
        self.snapshots, self.stop, self.error = 0, threading.Event(), None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"GET /v1/admin/stream?events=1&snapshots=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            got = self.sock.recv(4096)
            if not got:
                raise RuntimeError("figure 14: the stream closed before its head")
            head += got
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"figure 14: the stream answered {head.splitlines()[0]!r}")
        self.rest = head.split(b"\r\n\r\n", 1)[1]

    def run(self):
        data, tail = self.rest, b""
        try:
            while not self.stop.is_set():
                seen = tail + data  # a marker cut between two pieces is counted once
                self.snapshots += seen.count(b"event: snapshot")
                tail = seen[-14:]  # shorter than the marker: never counted twice
                data = self.sock.recv(65536)
                if not data:
                    break
        except OSError as e:
            if not self.stop.is_set():
                self.error = e

    def close(self):
        self.stop.set()
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def console_figure(node, seconds, add):
    window = max(seconds / 2, 1.0)
    idle, watched, received = [], [], []
    time.sleep(1)  # the start-up's own work done
    for _ in range(2):
        t0 = cpu_seconds(node.proc.pid)
        time.sleep(window)
        idle.append((cpu_seconds(node.proc.pid) - t0) / window * 100)
        viewers = [Viewer(node.port, node.key) for _ in range(10)]
        for v in viewers:
            v.start()
        time.sleep(1)  # the sampler woke and every stream had its first snapshot
        t0 = cpu_seconds(node.proc.pid)
        time.sleep(window)
        watched.append((cpu_seconds(node.proc.pid) - t0) / window * 100)
        for v in viewers:
            v.close()
        for v in viewers:
            v.join(timeout=5)
            if v.error:
                raise RuntimeError(f"figure 14: a viewer's stream broke: {v.error}")
        received.append(min(v.snapshots for v in viewers))
        time.sleep(1.5)  # the last stream gone: the sampler sleeps again
    if min(received) < window:  # one snapshot a second, to every viewer
        raise RuntimeError(f"figure 14: the viewers got too few snapshots: {received}")
    idle_pct, watched_pct = sum(idle) / len(idle), sum(watched) / len(watched)
    extra = max(watched_pct - idle_pct, 0.0)
    add(14, "console: node CPU added by 10 viewers", extra, idle_pct, "% of a core", "< 2% of one core",
        extra < 2.0, {"idle_pct": idle, "ten_viewers_pct": watched, "window_s": window,
                       "fewest_snapshots_per_viewer": received})
