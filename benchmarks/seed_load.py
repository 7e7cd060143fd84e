"""Seeds a benchmark sandbox (run inside it by benchmarks/load.py through `manage.py shell`, never elsewhere): a
radiologist, a technologist and STUDIES four-view studies of synthetic 16-bit DICOMs, uploaded through the real
ingestion service (decode, preview, working image, rows, analysis queued on the sandbox's own queue)."""

import os
from io import BytesIO

import pydicom
from django.conf import settings
from django.db import connection

from accounts.models import User
from accounts.roles import Role
from cases.management.commands.benchmark_inference import synthetic_mammogram_dicom
from cases.studies.ingestion import IncomingFile, study_upload
from core.benchmark_sandbox import DATABASE_PREFIX

assert str(connection.settings_dict["NAME"]).startswith(DATABASE_PREFIX), "not a benchmark sandbox database"
assert "mammo-bench-" in str(settings.MEDIA_ROOT), "not a benchmark sandbox media folder"

password = os.environ["BENCH_PASSWORD"]
User.objects.create_user("bench_radiologist", password=password, role=Role.RADIOLOGIST, first_name="Bench")
technologist = User.objects.create_user("bench_technologist", password=password, role=Role.TECHNOLOGIST)

template = synthetic_mammogram_dicom(rows=1600, columns=1000, seed=1)
studies = int(os.environ.get("BENCH_STUDIES", "12"))
for number in range(studies):
    files = []
    for side in ("R", "L"):
        for view in ("CC", "MLO"):
            ds = pydicom.dcmread(BytesIO(template))
            uid = pydicom.uid.generate_uid()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
            ds.ImageLaterality, ds.ViewPosition = side, view
            ds.PatientID, ds.PatientName = f"BENCH-{number:04d}", f"Bench^Patient{number}"
            out = BytesIO()
            ds.save_as(out, enforce_file_format=True)
            files.append(IncomingFile.from_bytes(f"{side}_{view}.dcm", out.getvalue()))
    result = study_upload(user=technologist, files=files)
    assert result.study is not None, [o.reason for o in result.outcomes]
print(f"seeded {studies} studies")
