"""Images per second through the full task path versus the bare model + Grad-CAM loop, measured in one run.

Full path = inference_job_run(): read the stored original, check its SHA-256, decode the 16-bit RLE DICOM,
preprocess, forward pass + Grad-CAM, map the heatmap back, write two PNGs, write the Prediction and job rows.
Bare loop = the same loaded model's forward pass + Grad-CAM on an already preprocessed tensor.

Files go to a temporary media folder; the rows it creates (a throwaway user, model version, study and images)
are deleted at the end. Run on an idle machine; the figures are what this machine does, not a guarantee.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand
from django.test import override_settings

from accounts.models import User


def synthetic_mammogram_dicom(*, rows: int, columns: int, seed: int = 0) -> bytes:
    """A real-size 16-bit RLE Lossless MG DICOM with a breast-like picture (not a real patient)."""
    from io import BytesIO

    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    rng = np.random.default_rng(seed)
    y, x = np.ogrid[:rows, :columns]
    breast = ((y - rows / 2) / (rows * 0.46)) ** 2 + (x / (columns * 0.85)) ** 2 <= 1
    texture = cv2.GaussianBlur(rng.standard_normal((rows // 8, columns // 8)).astype(np.float32), (0, 0), 3)
    texture = cv2.resize(texture, (columns, rows), interpolation=cv2.INTER_LINEAR)
    image = np.where(breast, 20000 + 6000 * texture, 800 + 50 * rng.standard_normal((rows, columns)))
    pixels = np.clip(image, 0, 65535).astype(np.uint16)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.ImageLaterality, ds.ViewPosition = "MG", "BENCH-1", "L", "CC"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    ds.compress(RLELossless, generate_instance_uid=False)
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=20)
        parser.add_argument("--rows", type=int, default=4600)
        parser.add_argument("--columns", type=int, default=2800)
        parser.add_argument("--backbone", default="b0")
        parser.add_argument("--input-size", type=int, default=512)
        parser.add_argument(
            "--concurrency",
            type=int,
            default=2,
            help="Jobs in flight at once, as in a worker started with '--pool threads --concurrency N' (one model "
            "shared by the threads): one job decodes and writes while another runs the network.",
        )

    def handle(self, *args, images, rows, columns, backbone, input_size, concurrency, **options):
        with tempfile.TemporaryDirectory() as tmp, override_settings(MEDIA_ROOT=tmp, MODEL_DIR=Path(tmp) / "models"):
            self._run(
                Path(tmp), images=images, rows=rows, columns=columns, backbone=backbone, input_size=input_size,
                concurrency=concurrency,
            )  # fmt: skip

    def _run(self, tmp: Path, *, images, rows, columns, backbone, input_size, concurrency):
        import keras

        from cases.models import Image, Patient, Study
        from cases.studies.ingestion import IncomingFile, study_upload
        from inference.models import InferenceJob, ModelVersion, Prediction
        from inference.serving.backbones import build_classifier
        from inference.serving.pipeline import inference_job_run
        from inference.serving.preprocessing import decode_for_model, preprocess
        from inference.serving.registry import model_version_register
        from inference.serving.runtime import loaded_model_get
        from mammo_platform import storage

        self.stdout.write(f"Building a {rows} x {columns} 16-bit RLE Lossless DICOM ...")
        template = synthetic_mammogram_dicom(rows=rows, columns=columns)
        self.stdout.write(f"  {len(template) / 1e6:.1f} MB encoded")
        keras.utils.set_random_seed(0)
        model_path = tmp / "bench.keras"
        build_classifier(backbone=backbone, input_size=input_size).save(model_path)

        previously_active = ModelVersion.objects.filter(is_active=True).first()
        tag = uuid.uuid4().hex[:8]
        # Rows are committed (worker threads use their own connections) and removed again at the end.
        user = User.objects.create(username=f"bench-{tag}", role="technologist")
        version = None
        try:
            version = model_version_register(
                path=model_path, name=f"bench-{tag}", backbone=backbone, input_size=input_size, activate=True
            )
            # Distinct files (distinct SHA-256) with identical pixels: the same decode cost each time.
            files = [
                IncomingFile(name=f"L_CC_{i}.dcm", data=template + b"\0" * (2 * (i + 1)))
                for i in range(images + concurrency)
            ]
            self.stdout.write(f"Uploading {len(files)} copies (not timed) ...")
            with _no_enqueue():
                study_upload(user=user, files=files, patient_id=f"BENCH-{tag}")
            job_ids = list(
                InferenceJob.objects.filter(model_version=version).order_by("pk").values_list("pk", flat=True)
            )
            loaded = loaded_model_get(version)

            # Warm-up: model load and graph tracing are paid once per worker process, not per image.
            for job_id in job_ids[:concurrency]:
                inference_job_run(job_id=job_id)
            timed = job_ids[concurrency:]
            started = time.perf_counter()
            if concurrency == 1:
                for job_id in timed:
                    inference_job_run(job_id=job_id)
            else:
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    list(pool.map(_run_job, timed))
            full_seconds = time.perf_counter() - started
            timings = [p.timings_ms for p in Prediction.objects.filter(model_version=version, job_id__in=timed)]

            image = version.predictions.first().image
            pixels = decode_for_model(filename="x.dcm", data=storage.read(image.original)).pixels
            tensor = preprocess(pixels, input_size=input_size).tensor[None]
            loaded.cam.run(tensor)
            bare = []
            for _ in range(images):
                mark = time.perf_counter()
                loaded.cam.run(tensor)
                bare.append(time.perf_counter() - mark)
        finally:
            if version is not None:
                Prediction.objects.filter(model_version=version).delete()
                InferenceJob.objects.filter(model_version=version).delete()
                studies = list(Study.objects.filter(created_by=user).values_list("pk", flat=True))
                Image.objects.filter(study_id__in=studies).delete()
                Study.objects.filter(pk__in=studies).delete()
                Patient.objects.filter(patient_id=f"BENCH-{tag}").delete()
                version.delete()
            user.delete()
            if previously_active is not None:
                ModelVersion.objects.filter(pk=previously_active.pk).update(is_active=True)

        full_ips = len(timed) / full_seconds
        bare_ips = 1 / statistics.mean(bare)
        self.stdout.write("")
        self.stdout.write(
            f"{images} images of {rows} x {columns} (16-bit RLE Lossless), EfficientNet-{backbone.upper()} at "
            f"{input_size} px, {concurrency} job(s) in flight"
        )
        self.stdout.write("Per-job stage medians (with jobs overlapping, stages share the CPU):")
        for stage in ("decode_ms", "preprocess_ms", "model_and_gradcam_ms", "heatmap_files_ms", "total_ms"):
            values = [t[stage] for t in timings if stage in t]
            self.stdout.write(f"  {stage:<22} {statistics.median(values):8.1f} ms")
        self.stdout.write(f"Full task path:         {full_ips:6.2f} images/s")
        self.stdout.write(
            f"Bare model + Grad-CAM:  {bare_ips:6.2f} images/s (median {statistics.median(bare) * 1000:.0f} ms)"
        )
        self.stdout.write(f"Ratio full / bare:      {full_ips / bare_ips:6.1%}  (target >= 70%)")


def _run_job(job_id: int) -> None:
    from django.db import connection

    from inference.serving.pipeline import inference_job_run

    try:
        inference_job_run(job_id=job_id)
    finally:
        connection.close()


class _no_enqueue:  # noqa: N801  (a context manager used like a function)
    """Jobs are run here directly, not by a worker: keep the upload from sending them to the broker."""

    def __enter__(self):
        from inference.serving import jobs as services

        self._original = services._enqueue
        services._enqueue = lambda job_id: None

    def __exit__(self, *exc):
        from inference.serving import jobs as services

        services._enqueue = self._original
