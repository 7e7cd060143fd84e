"""AI results as DICOM objects a PACS can archive (Django-free: the Celery worker and the tests use it bare).

- common.py: the AI result as the objects need it, derived UIDs, what every object copies from its source image;
- measurement_report.py: TID 1500 Imaging Measurement Report (Comprehensive SR), per image and per study;
- overlay.py: the heatmap overlay as a Secondary Capture, marked derived and, for a model that is not validated,
  for research use only;
- cad_sr.py: the Mammography CAD SR (TID 4000), the object mammography workstations show CAD marks from.

Building the same result again gives the same object byte for byte (UIDs derived from inputs, dates from the
result's own time): a retried send never creates a second instance in the archive.
"""
