"""The bench's report: results.json, the table on stdout, the chart (gnuplot)."""
import json
import os
import platform
import shutil
import subprocess
import sys
import time

PGBIN = "/usr/lib/postgresql/15/bin"


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])

    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "unknown"
    return {"cores": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(),
            "versions": {"nginx": version(["nginx", "-v"]), "wrk": version(["wrk", "-v"]),
                         "postgresql": version([f"{PGBIN}/postgres", "--version"]),
                         "caf": version(["dpkg-query", "-W", "-f=${Version}", "libcaf-dev"]),
                         "jemalloc": version(["dpkg-query", "-W", "-f=${Version}", "libjemalloc2"])}}


def report_of(a, results, colonyd, expected):
    """Writes results.json and the chart, prints the table; 1 if a figure is missing."""
    results.sort(key=lambda r: r["figure_no"])
    linked = subprocess.run(["ldd", colonyd], capture_output=True, text=True).stdout
    allocator = "jemalloc" if "libjemalloc" in linked else "libc malloc"
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
              "build_type": a.build_type, "allocator": allocator, "smoke": a.smoke,
              "settings": {"seconds": a.seconds, "connections": a.connections, "users": a.users},
              "results": results}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(report, f, indent=2)
    fmt = lambda v: "-" if v is None else (f"{v:,.1f}" if isinstance(v, float) else str(v))
    print(f"machine: {report['machine']['cores']} cores, {report['machine']['cpu']}, "
          f"{report['machine']['memory_gib']} GiB; build {a.build_type}, {allocator}{' (smoke)' if a.smoke else ''}")
    print(f"{'#':>2}  {'figure':<52} {'value':>12} {'reference':>12} {'ratio':>7}  {'unit':<12} {'target':<28} met")
    for r in results:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['figure_no']:>2}  {r['name']:<52} {fmt(r['figure']):>12} {fmt(r['reference']):>12} {ratio:>7}  "
              f"{r['unit']:<12} {r['target']:<28} {met}")
    chart(a.out, results)
    missing = [r["figure_no"] for r in results if not isinstance(r["figure"], (int, float))]
    if len(results) != expected or missing:
        print("figures missing:", missing or "some pairs did not run", file=sys.stderr)
        return 1
    return 0


def chart(out, results):
    """A bar chart of figure/reference ratios with the targets (gnuplot)."""
    if not shutil.which("gnuplot"):
        print("gnuplot not found: no chart")
        return
    data = os.path.join(out, "ratios.dat")
    targets = {1: 0.5, 2: 1.5, 4: 0.5, 6: 0.5, 8: 0.5, 10: 1.8}
    with open(data, "w") as f:
        for r in results:
            if r["ratio"] is not None:
                f.write(f"\"{r['figure_no']}\" {r['ratio']:.4f} {targets.get(r['figure_no'], 'NaN')}\n")  # NaN: no target
    script = f"""set terminal png size 900,500
set output '{os.path.join(out, "chart.png")}'
set title 'Colony: figure / reference in the same run (targets as black marks)'
set style data histograms
set style fill solid 0.6
set yrange [0:*]
set ylabel 'ratio'
set xlabel 'figure #'
plot '{data}' using 2:xtic(1) title 'ratio', '' using 0:3:(0.3) with xerrorbars lw 3 lc rgb 'black' pt 0 title 'target'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=False, capture_output=True)
