"""A process of its own that ingests received DICOM files, for tests/test_study_grouping.py.

Run as `python -m tests.grouping_child [--widen SECONDS] [--without-lock]` from the repository with the database
in the environment. It prints 'ready', then for each file path read from stdin ingests the file as the listener and
STOW-RS do (dicom_file_ingest) and prints the outcome as one JSON line.

--widen: after the group's study is looked up (none found, or found), wait that long before the study is created
and the transaction commits, so that a second process sending the same study at the same moment is certain to come
in between. --without-lock: the group's lock is not taken (to show that the test catches the race).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widen", type=float, default=0.0)
    parser.add_argument("--without-lock", action="store_true")
    options = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mammo_platform.settings")
    import django

    django.setup()
    from pydicom import dcmread

    from cases.dicom.ingest import dicom_file_ingest, dicom_service_user
    from cases.studies import ingestion
    from cases.studies.preparation import IncomingFile

    if options.without_lock:
        ingestion.study_group_lock = lambda key: None
    if options.widen:
        find = ingestion._study_of_group

        def widened(group):
            study = find(group)
            time.sleep(options.widen)
            return study

        ingestion._study_of_group = widened

    user = dicom_service_user()
    print("ready", flush=True)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        incoming = IncomingFile.borrowed_file("received.dcm", Path(path))
        outcome = dicom_file_ingest(incoming=incoming, sop_instance_uid=uid, user=user)
        answer = {"status": outcome.status, "study_id": outcome.study_id, "reason": outcome.reason}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
