"""Response times and SQL query counts of every list page and list API at a large site's size, measured in one run.

It builds N studies (cases.scale_data: patients, studies, four images each, AI results, reads with their
assessments, outcomes, audit rows) with bulk inserts, then requests each list page and API with Django's test
client, signed in as the role that uses it, and prints per URL the median and 95th percentile time and the number
of SQL queries. With several sizes (--studies 10000,100000) the site grows from one to the next and every size is
measured in the same run, so the table shows how each URL scales.

Always on a throwaway database and media folder of its own (core.benchmark_sandbox): an embedded SQLite
database by default, or, with --postgres-server, a new database created for the run on that PostgreSQL server and
dropped afterwards (production's engine: use it for figures that mean something). Run it on an idle machine.
"""

from __future__ import annotations

import statistics
import time

from django.core.management.base import BaseCommand, CommandError

from core.benchmark_sandbox import in_sandbox, require_sandbox, run_in_sandbox

SECONDS_PER_URL = 20
PASSWORD = "Quiet-harbour-lantern-93"  # never used to sign in: the client is signed in directly

# (role, URL) pairs: every list page and list API, as the role that uses it.
URLS = (
    ("radiologist", "/reading/?queue=awaiting_first"),
    ("radiologist", "/reading/?queue=awaiting_second"),
    ("radiologist", "/reading/?queue=in_progress"),
    ("radiologist", "/reading/?queue=completed"),
    ("radiologist", "/reading/?queue=completed&page=last"),
    ("radiologist", "/reading/?queue=awaiting_first&sort=suspicion"),
    ("radiologist", "/reading/?queue=completed&sort=suspicion"),
    ("lead_radiologist", "/reading/?queue=arbitration"),
    ("radiologist", "/api/worklist/?queue=awaiting_first"),
    ("radiologist", "/api/worklist/?queue=completed"),
    ("technologist", "/studies/"),
    ("technologist", "/studies/?page=last"),
    ("technologist", "/api/studies/"),
    ("radiologist", "/dicomweb/studies?limit=25"),
    ("radiologist", "/dicomweb/studies?limit=25&offset=1000"),
    ("radiologist", "/dicomweb/studies?PatientID=SCALE-5000"),
    ("radiologist", "/dicomweb/studies?PatientID=SCALE-9*&limit=25"),
    ("radiologist", "/dicomweb/studies?PatientID=NOBODY"),
    ("auditor", "/audit/"),
    ("auditor", "/audit/?page=last"),
    ("lead_radiologist", "/performance/"),
    ("lead_radiologist", "/performance/roc.png"),
    ("lead_radiologist", "/performance/strategies/"),
    ("lead_radiologist", "/api/performance/strategies/"),
    ("radiologist", "/api/auth/tokens/"),
    ("radiologist", "/"),
)


class QueryCounter(list):
    """SQL statements run, counted by an execute wrapper (connection.queries is emptied as each request starts)."""

    def __call__(self, execute, sql, params, many, context):
        self.append(sql)
        return execute(sql, params, many, context)


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument(
            "--studies", default="10000,100000", help="Site sizes to measure, comma-separated, growing (one run)."
        )
        parser.add_argument("--repeat", type=int, default=15, help="Timed requests per URL (after 2 warm-up ones).")
        parser.add_argument(
            "--only", default="", help="Measure only the URLs containing this text (e.g. /dicomweb/); default: all."
        )
        parser.add_argument(
            "--postgres-server",
            default="",
            help="A PostgreSQL server URL (e.g. postgres://postgres@127.0.0.1:5432/postgres): the benchmark creates "
            "a database of its own there and drops it afterwards. Default: an embedded SQLite database.",
        )

    def handle(self, *args, **options):
        sizes = [int(n) for n in options["studies"].split(",")]
        if sizes != sorted(sizes) or sizes[0] < 1:
            raise CommandError("--studies: positive sizes, growing (the site grows from one size to the next).")
        if in_sandbox():
            require_sandbox()
            return self._benchmark(sizes, options["repeat"], options["only"])
        if not any(options["only"] in url for _, url in URLS):
            raise CommandError(f"--only {options['only']!r}: no URL of the benchmark contains it.")
        return run_in_sandbox(
            "benchmark_pages",
            [f"--studies={options['studies']}", f"--repeat={options['repeat']}", f"--only={options['only']}"],
            stdout=self.stdout,
            postgres_server=options["postgres_server"] or None,
        )

    def _benchmark(self, sizes: list[int], repeat: int, only: str) -> None:
        from django.db import connection

        from accounts.roles import Role
        from accounts.services import user_create
        from cases.scale_data import build_site
        from inference.models import ModelVersion

        users = {
            role: user_create(username=f"bench-{role}", password=PASSWORD, role=role)
            for role in (Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.LEAD_RADIOLOGIST, Role.AUDITOR)
        }
        readers = [users[Role.RADIOLOGIST]] + [
            user_create(username=f"bench-reader-{i}", password=PASSWORD, role=Role.RADIOLOGIST) for i in range(3)
        ]
        version = ModelVersion.objects.create(
            name="bench-model", backbone="b0", input_size=512, file="bench.keras", file_sha256="0" * 64,
            preprocessing_version="bench", threshold=0.3, is_active=True, status="active",
        )  # fmt: skip
        self.stdout.write(f"Database: {connection.vendor} ({connection.settings_dict['NAME']})")
        built = 0
        for size in sizes:
            result = build_site(
                size - built, technologist=users[Role.TECHNOLOGIST], readers=readers,
                lead=users[Role.LEAD_RADIOLOGIST], model_version=version, start=built,
            )  # fmt: skip
            started = time.perf_counter()
            self._analyse(connection)
            self.stdout.write(
                f"\nBuilt {result.studies:,} more studies ({result.rows:,} rows) in {result.seconds:.1f} s, "
                f"vacuumed and analysed in {time.perf_counter() - started:.1f} s; site: {size:,} studies"
            )
            built = size
            self._measure(users, repeat, [(role, url) for role, url in URLS if only in url])

    def _analyse(self, connection) -> None:
        """Planner statistics and visibility map as autovacuum would have them on a site that grew over months
        (without the VACUUM, counts could not use index-only scans on freshly bulk-inserted tables)."""
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")

    def _measure(self, users, repeat: int, urls: list[tuple[str, str]]) -> None:
        from django.db import connection
        from django.test import Client

        clients = {}
        for role, user in users.items():
            clients[role] = Client(HTTP_HOST="localhost")
            clients[role].force_login(user)
        header = f"{'URL':<48} {'role':<17} {'status':>6} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'n':>3}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for role, url in urls:
            client = clients[role]
            started = time.perf_counter()
            response = client.get(url, secure=True)  # warm up (and, for the performance page, fill its cache)
            first_ms = 1000 * (time.perf_counter() - started)
            if first_ms < 1000 * SECONDS_PER_URL / 4:
                response = client.get(url, secure=True)
            queries = QueryCounter()
            with connection.execute_wrapper(queries):
                started = time.perf_counter()
                response = client.get(url, secure=True)
                counted_ms = 1000 * (time.perf_counter() - started)
            # `repeat` requests; for a URL so slow that they would take over SECONDS_PER_URL, fewer (3 at least), and
            # for one taking more than a quarter of it, only the counted request.
            slow = counted_ms > 1000 * SECONDS_PER_URL / 4
            times = [counted_ms] if slow else []
            budget = time.perf_counter() + SECONDS_PER_URL
            while not slow and len(times) < repeat and (len(times) < 3 or time.perf_counter() < budget):
                started = time.perf_counter()
                client.get(url, secure=True)
                times.append(1000 * (time.perf_counter() - started))
            times.sort()
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            self.stdout.write(
                f"{url:<48} {role:<17} {response.status_code:>6} {statistics.median(times):>10.1f} {p95:>8.1f} "
                f"{len(queries):>8} {len(times):>3}"
            )
            if url.startswith("/performance/") and not url.startswith("/performance/strategies"):
                self.stdout.write(f"{'  (its first view, computing the figures)':<73} {first_ms:>10.1f}")
