"""Audited writes per second on PostgreSQL with 1, 4 and 16 concurrent writers, measured in one run.

Each writer is a process of its own with its own database connection (as gunicorn workers, Celery workers and the
DICOM listener are). A writer runs transactions for --seconds; each transaction records one audit event through
audit_record(), as a download or a service does, and then, with --hold-ms above 0, goes on for that long before it
commits (what a service's transaction still does after its audit row: a status refresh, an outbox row). The table
gives writes per second, the ratio to one writer measured in the same run, and the median and 95th percentile time
of one transaction; then verify_audit over everything written.

--chains: the trail's number of chains (audit.services.AUDIT_CHAINS) for each measurement. One chain is the design
before ADR 0004 (one lock that every audited transaction held until it committed); measuring both in one run keeps
the machine's load out of the comparison.

Always on a new database created for the run on the PostgreSQL server given (core.benchmark_sandbox),
dropped afterwards: never an existing database. Run it on an idle machine.

    manage.py benchmark_audit --postgres-server postgres://postgres@127.0.0.1:5432/postgres --chains 1,16
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time

from django.core.management.base import BaseCommand, CommandError

from core.benchmark_sandbox import in_sandbox, require_sandbox, run_in_sandbox


def _writer(seconds: float, hold_ms: float, chains: int, start, results) -> None:
    """One writer process: audited transactions until the time is up; sends their times."""
    from django.db import connection, transaction

    from audit import services
    from audit.services import audit_record

    services.AUDIT_CHAINS = chains

    times: list[float] = []
    start.wait()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        with transaction.atomic():
            audit_record(
                action="image.downloaded",
                object_type="image",
                object_id=len(times) + 1,
                study_id=os.getpid(),
                details={"kind": "original", "writer": os.getpid()},
            )
            if hold_ms:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(%s)", [hold_ms / 1000])
        times.append(time.perf_counter() - began)
    connection.close()
    results.put(times)


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--writers", default="1,4,16", help="Concurrent writer counts, comma-separated.")
        parser.add_argument("--seconds", type=float, default=10.0, help="Seconds each measurement runs.")
        parser.add_argument(
            "--hold-ms",
            default="0,5",
            help="How long each transaction goes on after its audit row before it commits, in ms, comma-separated.",
        )
        parser.add_argument(
            "--chains", default="1,16", help="The trail's number of chains, comma-separated (1: the one lock before)."
        )
        parser.add_argument(
            "--postgres-server",
            default="",
            help="A PostgreSQL server URL (e.g. postgres://postgres@127.0.0.1:5432/postgres): the benchmark creates "
            "a database of its own there and drops it afterwards.",
        )

    def handle(self, *args, **options):
        writers = [int(n) for n in options["writers"].split(",")]
        holds = [float(n) for n in options["hold_ms"].split(",")]
        chains = [int(n) for n in options["chains"].split(",")]
        if in_sandbox():
            require_sandbox()
            return self._benchmark(writers, holds, chains, options["seconds"])
        if not options["postgres_server"]:
            raise CommandError(
                "--postgres-server is required: the figures are PostgreSQL's (SQLite lets one writer at a time "
                "write to the whole database, whatever the audit trail does)."
            )
        return run_in_sandbox(
            "benchmark_audit",
            [
                f"--writers={options['writers']}",
                f"--seconds={options['seconds']}",
                f"--hold-ms={options['hold_ms']}",
                f"--chains={options['chains']}",
            ],
            stdout=self.stdout,
            postgres_server=options["postgres_server"],
        )

    def _benchmark(self, writers: list[int], holds: list[float], chains: list[int], seconds: float) -> None:
        from django.db import connection, connections

        from audit.models import AuditEvent
        from audit.verification import audit_chain_verify

        if connection.vendor != "postgresql":
            raise CommandError("This benchmark measures PostgreSQL.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
            cursor.execute("SHOW synchronous_commit")
            synchronous_commit = cursor.fetchone()[0]
        self.stdout.write(
            f"\n{version}, synchronous_commit={synchronous_commit}, {os.cpu_count()} CPUs; "
            f"{seconds:g} s per measurement; each writer a process with its own connection"
        )
        header = (
            f"{'chains':>6}  {'after the audit row':<20} {'writers':>7} {'writes/s':>9} {'vs 1 writer':>11} "
            f"{'median ms':>9} {'p95 ms':>7}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        context = multiprocessing.get_context("fork")
        for hold, chain_count in ((hold, chain_count) for hold in holds for chain_count in chains):
            single = None
            for count in writers:
                connections.close_all()  # the children open their own connections
                start = context.Barrier(count + 1)
                results = context.Queue()
                processes = [
                    context.Process(target=_writer, args=(seconds, hold, chain_count, start, results))
                    for _ in range(count)
                ]
                for process in processes:
                    process.start()
                start.wait()
                began = time.perf_counter()
                times = [t for _ in processes for t in results.get(timeout=seconds + 120)]
                elapsed = time.perf_counter() - began
                for process in processes:
                    process.join()
                    if process.exitcode:
                        raise CommandError(f"A writer failed (exit status {process.exitcode}).")
                rate = len(times) / elapsed
                single = single or rate
                times.sort()
                p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
                self.stdout.write(
                    f"{chain_count:>6}  {f'commits after {hold:g} ms':<20} {count:>7} {rate:>9.0f} "
                    f"{rate / single:>10.2f}x {1000 * statistics.median(times):>9.1f} {1000 * p95:>7.1f}"
                )
        began = time.perf_counter()
        checked, broken = audit_chain_verify()
        elapsed = time.perf_counter() - began
        verdict = "intact" if broken is None else f"BROKEN at event {broken.event_id}: {broken.problem}"
        self.stdout.write(
            f"\nverify_audit: {checked:,} of {AuditEvent.objects.count():,} events checked in {elapsed:.1f} s, "
            f"{verdict}"
        )
        if broken is not None:
            raise CommandError("The audit trail written by the benchmark does not verify.")
