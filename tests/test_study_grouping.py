"""Views of one study received at the same moment by two processes (as by the DICOM listener and a web worker)
make one study: the study is found or created under the group's lock (cases.studies.grouping).

Each round sends two views of one study, one to each of two real OS processes (tests/grouping_child.py), at the
same moment. The processes wait half a second between looking the study up and creating it, so the second sender is
certain to come in between; without the lock that makes two studies, which the last PostgreSQL test shows.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from tests.dicom_factory import SECONDARY_CAPTURE, make_dicom
from tests.dicom_network import database_env

REPO = Path(__file__).resolve().parent.parent
WIDEN_SECONDS = 0.5


class Sender:
    """One tests/grouping_child.py process."""

    def __init__(self, *, env: dict[str, str], log: Path, widen: float, without_lock: bool) -> None:
        arguments = ["--widen", str(widen), *(["--without-lock"] if without_lock else [])]
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.grouping_child", *arguments], cwd=REPO, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"),  # noqa: SIM115
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def line(self, timeout: float = 120) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer from the sender:\n{self.log.read_text()[-4000:]}") from None

    def send(self, path: Path) -> None:
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Senders:
    def __init__(self, env: dict[str, str], workdir: Path, *, without_lock: bool = False) -> None:
        self.workdir = workdir
        self.senders = [
            Sender(env=env, log=workdir / f"sender-{n}.log", widen=WIDEN_SECONDS, without_lock=without_lock)
            for n in range(2)
        ]
        for sender in self.senders:
            assert sender.line() == "ready"

    def send_at_once(self, views: list[bytes]) -> list[dict]:
        """One view to each process, at the same moment; their outcomes."""
        paths = []
        for n, data in enumerate(views):
            path = self.workdir / f"{generate_uid()}-{n}.dcm"
            path.write_bytes(data)
            paths.append(path)
        for sender, path in zip(self.senders, paths, strict=True):
            sender.send(path)
        return [json.loads(sender.line()) for sender in self.senders]

    def stop(self) -> None:
        for sender in self.senders:
            sender.stop()


def two_views_of_a_dicom_study(woman: str) -> list[bytes]:
    uid = generate_uid()
    return [make_dicom(laterality=side, view="CC", study_uid=uid, patient_id=woman) for side in "LR"]


def two_views_of_a_cbis_ddsm_exam(number: int) -> list[bytes]:
    """CBIS-DDSM: every view its own StudyInstanceUID; the PatientID names the exam and the view."""
    return [
        make_dicom(sop_class=SECONDARY_CAPTURE, laterality="", view="", patient_id=f"Mass-Test_P_{number:05d}_{side}")
        for side in ("LEFT_CC", "RIGHT_CC")
    ]


ROUNDS = [
    ("W-GROUP-1", lambda: two_views_of_a_dicom_study("W-GROUP-1")),
    ("P_00901", lambda: two_views_of_a_cbis_ddsm_exam(901)),
    ("W-GROUP-2", lambda: two_views_of_a_dicom_study("W-GROUP-2")),
]


@pytest.fixture
def senders_env(transactional_db, settings):
    return {**database_env(settings), "CONN_MAX_AGE": "0"}


def studies_of(woman: str) -> list[int]:
    from cases.models import Study

    return sorted(Study.objects.filter(patient__patient_id=woman).values_list("pk", flat=True))


def test_it_makes_one_study_of_views_sent_at_once_by_two_processes(senders_env, tmp_path):
    from cases.models import Image

    senders = Senders(senders_env, tmp_path)
    try:
        for woman, views in ROUNDS:
            outcomes = senders.send_at_once(views())
            assert [o["status"] for o in outcomes] == ["stored", "stored"], outcomes
            [study] = studies_of(woman)
            assert {o["study_id"] for o in outcomes} == {study}
            assert Image.objects.filter(study_id=study).count() == 2
    finally:
        senders.stop()


def test_without_the_lock_the_same_sending_makes_two_studies(senders_env, tmp_path):
    """The test above catches the race: the same processes, not taking the group's lock, make two studies."""
    senders = Senders(senders_env, tmp_path, without_lock=True)
    try:
        counts = []
        for woman, views in ROUNDS[:2]:
            outcomes = senders.send_at_once(views())
            assert [o["status"] for o in outcomes] == ["stored", "stored"], outcomes
            counts.append(len(studies_of(woman)))
    finally:
        senders.stop()
    assert 2 in counts, counts


def test_on_sqlite_the_database_write_lock_makes_one_study(tmp_path):
    """The embedded mode: SQLite's write transactions begin IMMEDIATE (one writer at a time for the whole database),
    so the lookup and the creation are serialised without an advisory lock."""
    embedded = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    env = {**embedded, "MAMMO_VAR_DIR": str(tmp_path / "var"), "MEDIA_ROOT": str(tmp_path / "media"), "SECRET_KEY": "x"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    senders = Senders(env, tmp_path)
    try:
        for _, views in ROUNDS[:2]:
            outcomes = senders.send_at_once(views())
            assert [o["status"] for o in outcomes] == ["stored", "stored"], outcomes
            assert outcomes[0]["study_id"] == outcomes[1]["study_id"], outcomes
    finally:
        senders.stop()
    with sqlite3.connect(tmp_path / "var" / "db.sqlite3") as database:
        assert database.execute("SELECT COUNT(*) FROM cases_study").fetchone() == (2,)
        assert database.execute("SELECT COUNT(*) FROM cases_image").fetchone() == (4,)
