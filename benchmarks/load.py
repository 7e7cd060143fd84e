"""Throughput under load: 10 clients, then 50, in one run, against the platform started like production.

    .venv/bin/python benchmarks/load.py [--users 10,50] [--duration 60] [--rounds 2] [--studies 12]

A throwaway sandbox (benchmarks/sandbox.py: a PostgreSQL database, a Redis cache prefix and queue, a media folder of
its own, all removed afterwards) is seeded with a radiologist, a technologist and four-view studies through the real
upload path, then gunicorn is started with mammo_platform/gunicorn_conf.py (WEB_CONCURRENCY / WEB_THREADS as set in
the environment) and locust (benchmarks/locustfile.py) runs headless at each number of clients in turn, --rounds
times, for --duration seconds each once all of its clients have signed in (the locustfile resets the statistics when
the last one has; sign-ins are timed apart). No Celery worker: the pages read only. Prints requests/s, median and
95th percentile response times and failures per run, each count's mean, and the ratio of the last count's mean
throughput to the first's. The figures are what this machine does with locust on the same cores.
"""

from __future__ import annotations

import argparse
import csv
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox import HERE, Sandbox  # noqa: E402


def _number(text: str) -> float:
    return 0.0 if text in ("", "N/A") else float(text)


def run_locust(box: Sandbox, *, users: int, duration: int, password: str, workdir: Path) -> dict:
    """One locust run; its statistics start when the last client has signed in (the sign-ins are timed apart)."""
    prefix = workdir / f"u{users}"
    env = {**box.env, "BENCH_PASSWORD": password}
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--host", box.url,
         "-u", str(users), "-r", str(users), "--run-time", f"{duration + 5 + users // 5}s", "--only-summary",
         "--csv", str(prefix), "--loglevel", "WARNING", "--stop-timeout", "10"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    result = {
        "users": users,
        "rps": _number(total["Requests/s"]),
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "p50": _number(total["50%"]),
        "p95": _number(total["95%"]),
        "exit": done.returncode,
        "sign_in_s": next(
            (float(m.group(1)) for m in re.finditer(r"SIGNED_IN \d+ clients in ([\d.]+) s", done.stderr)), None
        ),
        "per_name": {
            name: (int(row["Request Count"]), _number(row["50%"]), _number(row["95%"]))
            for name, row in rows.items()
            if name != "Aggregated" and int(row["Request Count"])
        },
    }
    failures = Path(f"{prefix}_failures.csv")
    if result["failures"] and failures.exists():
        result["failure_lines"] = failures.read_text().splitlines()[1:6]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="10,50", help="Client counts, comma-separated, run in this order.")
    parser.add_argument("--duration", type=int, default=60, help="Measured seconds per client count.")
    parser.add_argument("--studies", type=int, default=12, help="Four-view studies seeded.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="Times the client counts are run in turn (10, 50, 10, 50, ...): on a shared machine the others' load "
        "then falls on both counts alike. Each count's figures are the mean over its rounds.",
    )
    parser.add_argument("--tree", default=None, help="Another checkout whose code runs (default: this one).")
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help='Extra gunicorn options, after the configuration file (e.g. "--worker-class sync --workers 3").',
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.users.split(",")]
    password = secrets.token_urlsafe(16)
    extra = {"BENCH_PASSWORD": password, "BENCH_STUDIES": str(args.studies)}
    box_args = {"extra_env": extra}
    if args.tree:
        box_args["tree"] = Path(args.tree)
    with Sandbox(**box_args) as box, tempfile.TemporaryDirectory(prefix="mammo-locust-") as workdir:
        print(box.shell((HERE / "seed_load.py").read_text()).strip(), flush=True)
        box.start(extra_args=args.gunicorn_args.split())
        results = []
        for users in levels * args.rounds:
            print(f"locust: {users} clients for {args.duration} s ...", flush=True)
            result = run_locust(box, users=users, duration=args.duration, password=password, workdir=Path(workdir))
            results.append(result)
        log_tail = box.log.read_text(errors="replace")[-2000:]
    print()
    print(
        f"{'clients':>7} {'requests/s':>10} {'requests':>8} {'failures':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'all signed in after':>20}"
    )
    for r in results:
        signed = f"{r['sign_in_s']:.1f} s" if r["sign_in_s"] is not None else "not all"
        print(
            f"{r['users']:>7} {r['rps']:>10.1f} {r['requests']:>8} {r['failures']:>8} {r['p50']:>7.0f} "
            f"{r['p95']:>7.0f} {signed:>20}"
        )
    for r in results:
        for line in r.get("failure_lines", []):
            print(f"  failure at {r['users']} clients: {line}")
    means = {users: statistics.mean(r["rps"] for r in results if r["users"] == users) for users in levels}
    for users in levels:
        runs = [r for r in results if r["users"] == users]
        print(
            f"mean over {len(runs)} round(s) at {users} clients: {means[users]:.1f} requests/s, "
            f"p95 {statistics.mean(r['p95'] for r in runs):.0f} ms, {sum(r['failures'] for r in runs)} failures"
        )
    if len(levels) > 1:
        first, last = levels[0], levels[-1]
        ratio = means[last] / means[first] if means[first] else 0.0
        print(f"throughput at {last} clients / at {first} clients: {ratio:.1%}")
    print()
    print("per request (last level): name, count, p50 ms, p95 ms")
    for name, (count, p50, p95) in sorted(results[-1]["per_name"].items()):
        print(f"  {name:<32} {count:>6} {p50:>6.0f} {p95:>6.0f}")
    if any(r["failures"] or r["sign_in_s"] is None for r in results):
        print("gunicorn log (tail):\n" + log_tail)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
