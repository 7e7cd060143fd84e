"""Reading statistics: per reader and per site, over the last 7, 28 and 365 days, the reads given, recall rate,
technical recall rate, median time per read and agreement with the other reader; and the reading sessions.

Three queries whatever the number of reads (the reads, the double-read pairs, the sessions), then pure arithmetic
(`figures`, `cohen_kappa`, `statistics_from`), tested on hand-made rows.

What counts:
- a read is a submitted first or second read (arbitration decides discordant pairs and would skew recall rates);
  it falls in a window when it was submitted in it;
- time per read runs from when the read was claimed (or handed over to its reader) to when it was submitted
  (Read.claimed_at to Read.submitted_at): it includes any time the read lay open, hence the median;
- the site is the one of the appointment the images were taken in (Appointment.site); studies that came without an
  appointment (uploads, research data) are counted under NO_SITE;
- agreement: studies whose first and second reads are both submitted, in the window of the later submission; the
  two readers agree when both recall or both do not. Cohen's kappa is undefined (None) when chance agreement is
  total (both readers gave the same decision in every pair).
"""

from __future__ import annotations

import statistics as stats
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.roles import Capability, role_can
from cases.models import Read, ReadingSession, TechnicalRecall

WINDOWS = (7, 28, 365)
NO_SITE = "No appointment (site not known)"


@dataclass(frozen=True)
class ReadRow:
    """One submitted first or second read, as the statistics need it."""

    reader_id: int
    site: str
    submitted_at: datetime
    seconds: float  # claimed to submitted
    recall: bool
    technical_recall: bool


@dataclass(frozen=True)
class PairRow:
    """A study's first and second reads, both submitted."""

    first_reader_id: int
    second_reader_id: int
    site: str
    decided_at: datetime  # the later of the two submissions
    first_recall: bool
    second_recall: bool


@dataclass(frozen=True)
class SessionRow:
    reader_id: int
    started_at: datetime
    ended_at: datetime | None
    reads: int


@dataclass(frozen=True)
class Agreement:
    pairs: int
    agreed: int
    kappa: float | None

    @property
    def percent(self) -> float | None:
        return 100 * self.agreed / self.pairs if self.pairs else None


@dataclass(frozen=True)
class Figures:
    reads: int
    recalls: int
    technical_recalls: int
    median_seconds: float | None
    agreement: Agreement

    @property
    def recall_rate(self) -> float | None:
        return 100 * self.recalls / self.reads if self.reads else None

    @property
    def technical_recall_rate(self) -> float | None:
        return 100 * self.technical_recalls / self.reads if self.reads else None


@dataclass(frozen=True)
class SessionSummary:
    sessions: int
    open: int
    reads: int
    mean_minutes: float | None  # over the ended sessions

    @property
    def reads_per_session(self) -> float | None:
        return self.reads / self.sessions if self.sessions else None


@dataclass(frozen=True)
class Row:
    label: str
    figures: dict[int, Figures]  # by window (days)
    reader_id: int | None = None
    site: str | None = None


@dataclass(frozen=True)
class ReadingStatistics:
    now: datetime
    windows: tuple[int, ...]
    sees_all: bool  # every reader's row (reading.statistics_all), else the user's own
    readers: list[Row]
    sites: list[Row]
    total: Row
    sessions: dict[int, SessionSummary] = field(default_factory=dict)


def cohen_kappa(pairs: list[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two raters' yes/no decisions: (observed - chance agreement) / (1 - chance agreement), chance
    from each rater's own rate of yes. None with no pairs, or when chance agreement is total."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    p_a = sum(a for a, _ in pairs) / n
    p_b = sum(b for _, b in pairs) / n
    chance = p_a * p_b + (1 - p_a) * (1 - p_b)
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def agreement(pairs: list[tuple[bool, bool]]) -> Agreement:
    return Agreement(pairs=len(pairs), agreed=sum(a == b for a, b in pairs), kappa=cohen_kappa(pairs))


def figures(reads: list[ReadRow], pairs: list[tuple[bool, bool]]) -> Figures:
    return Figures(
        reads=len(reads),
        recalls=sum(r.recall for r in reads),
        technical_recalls=sum(r.technical_recall for r in reads),
        median_seconds=stats.median(r.seconds for r in reads) if reads else None,
        agreement=agreement(pairs),
    )


def _sessions_summary(rows: list[SessionRow]) -> SessionSummary:
    ended = [(r.ended_at - r.started_at).total_seconds() / 60 for r in rows if r.ended_at is not None]
    return SessionSummary(
        sessions=len(rows),
        open=sum(r.ended_at is None for r in rows),
        reads=sum(r.reads for r in rows),
        mean_minutes=sum(ended) / len(ended) if ended else None,
    )


def statistics_from(
    *,
    reads: list[ReadRow],
    pairs: list[PairRow],
    sessions: list[SessionRow],
    now: datetime,
    names: dict[int, str],
    reader_ids: set[int] | None,
    windows: tuple[int, ...] = WINDOWS,
) -> ReadingStatistics:
    """The figures from the rows (pure). reader_ids: the readers whose own rows (and sessions) are shown; None for
    every reader. Site rows and the total always count every reader's reads."""
    since = {days: now - timedelta(days=days) for days in windows}
    every_reader = sorted({r.reader_id for r in reads} | {p.first_reader_id for p in pairs}
                          | {p.second_reader_id for p in pairs}, key=lambda pk: (names.get(pk, ""), pk))  # fmt: skip
    shown = [pk for pk in every_reader if reader_ids is None or pk in reader_ids]
    if reader_ids is not None:
        shown += [pk for pk in sorted(reader_ids) if pk not in shown]  # one's own row, even when still empty

    # Each row and window looks only at its own reads and pairs: grouped once, not scanned again per reader or site.
    reads_by_reader: dict[int, list[ReadRow]] = defaultdict(list)
    reads_by_site: dict[str, list[ReadRow]] = defaultdict(list)
    for r in reads:
        reads_by_reader[r.reader_id].append(r)
        reads_by_site[r.site].append(r)
    pairs_by_reader: dict[int, list[tuple[PairRow, bool]]] = defaultdict(list)  # (pair, reader gave the first read)
    pairs_by_site: dict[str, list[PairRow]] = defaultdict(list)
    for p in pairs:
        pairs_by_reader[p.first_reader_id].append((p, True))
        pairs_by_reader[p.second_reader_id].append((p, False))
        pairs_by_site[p.site].append(p)

    def reader_row(pk: int) -> Row:
        by_window = {}
        for days in windows:
            own = [r for r in reads_by_reader[pk] if r.submitted_at >= since[days]]
            # Oriented (this reader, the other reader), whichever read this reader gave.
            oriented = [
                (p.first_recall, p.second_recall) if first else (p.second_recall, p.first_recall)
                for p, first in pairs_by_reader[pk]
                if p.decided_at >= since[days]
            ]
            by_window[days] = figures(own, oriented)
        return Row(label=names.get(pk, f"user {pk}"), figures=by_window, reader_id=pk)

    def group_row(label: str, site: str | None) -> Row:
        group_reads = reads if site is None else reads_by_site[site]
        group_pairs = pairs if site is None else pairs_by_site[site]
        by_window = {}
        for days in windows:
            by_window[days] = figures(
                [r for r in group_reads if r.submitted_at >= since[days]],
                [(p.first_recall, p.second_recall) for p in group_pairs if p.decided_at >= since[days]],
            )
        return Row(label=label, figures=by_window, site=site)

    sites = sorted({r.site for r in reads} | {p.site for p in pairs}, key=lambda s: (s == NO_SITE, s))
    own_sessions = [s for s in sessions if reader_ids is None or s.reader_id in reader_ids]
    return ReadingStatistics(
        now=now,
        windows=windows,
        sees_all=reader_ids is None,
        readers=[reader_row(pk) for pk in shown],
        sites=[group_row(site, site) for site in sites],
        total=group_row("All sites", None),
        sessions={
            days: _sessions_summary([s for s in own_sessions if s.started_at >= since[days]]) for days in windows
        },
    )


# ------------------------------------------------------------------------------------------------------ queries


def _site():
    return Coalesce(F("study__appointment__site"), Value(NO_SITE))


def _read_rows(since: datetime) -> list[ReadRow]:
    rows = (
        Read.objects.filter(status=Read.Status.SUBMITTED, kind__in=Read.DOUBLE, submitted_at__gte=since)
        .annotate(site_name=_site(), repeat=Exists(TechnicalRecall.objects.filter(read=OuterRef("pk"))))
        .order_by()
        .values_list("reader_id", "site_name", "submitted_at", "claimed_at", "recall", "repeat")
    )
    return [
        ReadRow(
            reader, site or NO_SITE, submitted, max((submitted - claimed).total_seconds(), 0.0), bool(recall), repeat
        )  # fmt: skip
        for reader, site, submitted, claimed, recall, repeat in rows
    ]


def _pair_rows(since: datetime) -> list[PairRow]:
    second = Read.objects.filter(study=OuterRef("study"), kind=Read.Kind.SECOND, status=Read.Status.SUBMITTED)
    rows = (
        Read.objects.filter(kind=Read.Kind.FIRST, status=Read.Status.SUBMITTED)
        .annotate(
            site_name=_site(),
            second_reader=Subquery(second.values("reader_id")[:1]),
            second_recall=Subquery(second.values("recall")[:1]),
            second_at=Subquery(second.values("submitted_at")[:1]),
        )
        .filter(second_at__isnull=False)
        .filter(Q(submitted_at__gte=since) | Q(second_at__gte=since))
        .order_by()
        .values_list("reader_id", "second_reader", "site_name", "submitted_at", "second_at", "recall", "second_recall")
    )
    return [
        PairRow(
            first, second_reader, site or NO_SITE, max(first_at, second_at), bool(first_recall), bool(second_recall)
        )  # fmt: skip
        for first, second_reader, site, first_at, second_at, first_recall, second_recall in rows
    ]


def _session_rows(since: datetime) -> list[SessionRow]:
    rows = (
        ReadingSession.objects.filter(started_at__gte=since)
        .annotate(n=Count("reads", filter=Q(reads__status=Read.Status.SUBMITTED)))
        .order_by()
        .values_list("reader_id", "started_at", "ended_at", "n")
    )
    return [SessionRow(*row) for row in rows]


def may_see_statistics(user) -> bool:
    return role_can(user, Capability.READING_STATISTICS) or role_can(user, Capability.READING_STATISTICS_ALL)


def reading_statistics(*, user, now: datetime | None = None) -> ReadingStatistics:
    """The statistics page's figures for this user: every reader's row with reading.statistics_all, else only their
    own (reading.statistics); the site rows and the total for both."""
    now = now or timezone.now()
    since = now - timedelta(days=max(WINDOWS))
    reads, pairs, sessions = _read_rows(since), _pair_rows(since), _session_rows(since)
    sees_all = role_can(user, Capability.READING_STATISTICS_ALL)
    ids = {r.reader_id for r in reads} | {p.first_reader_id for p in pairs} | {p.second_reader_id for p in pairs}
    ids.add(user.pk)
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    return statistics_from(
        reads=reads,
        pairs=pairs,
        sessions=sessions,
        now=now,
        names=names,
        reader_ids=None if sees_all else {user.pk},
    )


# ------------------------------------------------------------------------------------------------ presentation


def _figures_json(f: Figures) -> dict:
    return {
        "reads": f.reads,
        "recalls": f.recalls,
        "recall_rate": f.recall_rate,
        "technical_recalls": f.technical_recalls,
        "technical_recall_rate": f.technical_recall_rate,
        "median_seconds_per_read": f.median_seconds,
        "agreement": {
            "pairs": f.agreement.pairs,
            "agreed": f.agreement.agreed,
            "percent": f.agreement.percent,
            "kappa": f.agreement.kappa,
        },
    }


def _row_json(row: Row) -> dict:
    head = {"reader_id": row.reader_id, "username": row.label} if row.reader_id is not None else {"site": row.label}
    return {**head, "windows": {str(days): _figures_json(f) for days, f in row.figures.items()}}


def statistics_json(report: ReadingStatistics) -> dict:
    """The API's body: rates in percent, times in seconds; None where a figure is undefined."""
    return {
        "computed_at": report.now.isoformat(),
        "windows_days": list(report.windows),
        "every_reader": report.sees_all,
        "readers": [_row_json(row) for row in report.readers],
        "sites": [_row_json(row) for row in report.sites],
        "total": _row_json(report.total),
        "sessions": {
            str(days): {
                "sessions": s.sessions,
                "open": s.open,
                "reads": s.reads,
                "reads_per_session": s.reads_per_session,
                "mean_minutes": s.mean_minutes,
            }
            for days, s in report.sessions.items()
        },
    }


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _percent_text(value: float | None, successes: int, total: int) -> str:
    return "–" if value is None else f"{value:.1f} % ({successes} of {total})"


def _cells(f: Figures) -> dict:
    a = f.agreement
    return {
        "reads": f.reads,
        "recall_rate": _percent_text(f.recall_rate, f.recalls, f.reads),
        "technical_recall_rate": _percent_text(f.technical_recall_rate, f.technical_recalls, f.reads),
        "median_time": _duration_text(f.median_seconds),
        "agreement": _percent_text(a.percent, a.agreed, a.pairs),
        "kappa": "–" if a.kappa is None else f"{a.kappa:.3f}",
    }


def statistics_tables(report: ReadingStatistics) -> list[dict]:
    """One table per window for the page, figures as text."""
    tables = []
    for days in report.windows:
        s = report.sessions[days]
        tables.append(
            {
                "days": days,
                "readers": [{"label": r.label, **_cells(r.figures[days])} for r in report.readers],
                "sites": [{"label": r.label, **_cells(r.figures[days])} for r in report.sites],
                "total": {"label": report.total.label, **_cells(report.total.figures[days])},
                "sessions": {
                    "count": s.sessions,
                    "open": s.open,
                    "reads": s.reads,
                    "reads_per_session": "–" if s.reads_per_session is None else f"{s.reads_per_session:.1f}",
                    "mean_length": "–" if s.mean_minutes is None else _duration_text(s.mean_minutes * 60),
                },
            }
        )
    return tables
