"""Images per second through the full task path versus the bare model + Grad-CAM loop, measured in one run, and
the upload-to-result time of one image. Always on a throwaway database and media folder of its own.

Full path = inference_job_run(): claim the job, read the working image that ingestion kept and check its SHA-256,
preprocess, forward pass + Grad-CAM, map the heatmap back, write two PNGs, write the Prediction, job, audit and
study rows. Bare loop = the same loaded model's forward pass + Grad-CAM on an already preprocessed tensor, run just
before and just after each full-path measurement and pooled, so that a drift of the machine's speed stays out of
the ratio.
Upload-to-result = study_upload() of one real-size 16-bit RLE DICOM (checks, the one decode, preview and working
image, rows) then its analysis, with the model already loaded (a running worker has it).

Whatever DATABASE_URL, MEDIA_ROOT or the broker say, the command re-runs itself in a child process on an embedded
SQLite database, a media folder and a model folder in a new temporary directory, which is removed afterwards
(core.benchmark_sandbox): a benchmark never touches clinical data or the active model. Run it on an idle
machine; the figures are what this machine does, not a guarantee.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.core.management.base import BaseCommand

from core.benchmark_sandbox import in_sandbox, require_sandbox, run_in_sandbox, sandbox_dir

STAGES = ("read_ms", "preprocess_ms", "model_and_gradcam_ms", "heatmap_files_ms", "total_ms")


TEMPLATE_UID = "2.25." + "7" * 32 + "000000"  # the last six digits are replaced in each copy


def instance_copy(template: bytes, number: int) -> bytes:
    """The template as another DICOM instance: same pixels (same decode cost), its own SOP Instance UID (the same
    length, patched in place in the file meta and the dataset) and so its own SHA-256."""
    return template.replace(TEMPLATE_UID.encode(), f"{TEMPLATE_UID[:-6]}{number:06d}".encode())


def synthetic_mammogram_dicom(*, rows: int, columns: int, seed: int = 0, sop_uid: str = TEMPLATE_UID) -> bytes:
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
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.ImageLaterality, ds.ViewPosition = "MG", "BENCH-1", "L", "CC"
    ds.BodyPartExamined = "BREAST"
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
        parser.add_argument("--images", type=int, default=20, help="Timed images per configuration.")
        parser.add_argument("--rows", type=int, default=4600)
        parser.add_argument("--columns", type=int, default=2800)
        parser.add_argument(
            "--configs",
            default="b0:512,b2:260",
            help="Comma-separated backbone:input-size pairs (random weights: speed does not depend on them).",
        )
        parser.add_argument(
            "--concurrency",
            default="1,2",
            help="Jobs in flight at once, comma-separated: 1 is a worker taking one job at a time "
            "(CELERY_CONCURRENCY=1), 2 a threads pool of two sharing one model (the default of run.sh and docker).",
        )

    def handle(self, *args, **options):
        if in_sandbox():
            require_sandbox()
            return self._benchmark(**options)
        return run_in_sandbox(
            "benchmark_inference",
            [
                f"--{name.replace('_', '-')}={options[name]}"
                for name in ("images", "rows", "columns", "configs", "concurrency")
            ],
            stdout=self.stdout,
        )

    def _benchmark(self, *, images, rows, columns, configs, concurrency, **options) -> None:
        self.stdout.write(f"Building a {rows} x {columns} 16-bit RLE Lossless DICOM ...")
        template = synthetic_mammogram_dicom(rows=rows, columns=columns)
        self.stdout.write(f"  {len(template) / 1e6:.1f} MB encoded")
        levels = [int(c) for c in concurrency.split(",")]
        results = []
        for number, config in enumerate(configs.split(",")):
            backbone, size = config.split(":")
            results.append(self._configuration(number, template, backbone, int(size), images, levels, rows, columns))
        self.stdout.write("")
        self.stdout.write("Summary (full task path as a share of the bare model + Grad-CAM loop):")
        for line in results:
            self.stdout.write(line)

    def _configuration(self, number, template, backbone, input_size, images, levels, rows, columns) -> str:
        import keras

        from accounts.models import User
        from cases.studies.ingestion import IncomingFile, study_upload
        from core import storage
        from imaging.working_image import working_image_pixels
        from inference.models import InferenceJob, Prediction
        from inference.serving.backbones import build_classifier
        from inference.serving.pipeline import inference_job_run
        from inference.serving.preprocessing import preprocess
        from inference.serving.registry import model_version_register
        from inference.serving.runtime import loaded_model_get

        self.stdout.write("")
        self.stdout.write(f"EfficientNet-{backbone.upper()} at {input_size} px")
        keras.utils.set_random_seed(0)
        model_path = sandbox_dir() / f"bench-{number}.keras"
        build_classifier(backbone=backbone, input_size=input_size).save(model_path)
        version = model_version_register(
            path=model_path, name=f"bench-{number}-{backbone}-{input_size}", backbone=backbone,
            input_size=input_size, activate=True, confirm_unvalidated=True, confirmed_by="benchmark (random weights)",
        )  # fmt: skip
        user, _ = User.objects.get_or_create(username="benchmark", defaults={"role": "technologist"})
        loaded = loaded_model_get(version)  # a running worker has its model loaded already

        # Upload-to-result for one image: ingestion (checks, the one decode, preview, working image, rows), then
        # its analysis. A first, untimed pass traces the graph and warms the caches, as a running worker has them.
        for attempt in ("warm-up", "timed"):
            one = IncomingFile.from_bytes("L_CC.dcm", instance_copy(template, number * 100_000 + len(attempt)))
            mark = time.perf_counter()
            with _no_enqueue():
                study = study_upload(user=user, files=[one], patient_id=f"BENCH-{number}").study
            ingest_ms = (time.perf_counter() - mark) * 1000
            job = InferenceJob.objects.get(image__study=study, model_version=version)
            mark = time.perf_counter()
            inference_job_run(job_id=job.pk)
            analyse_ms = (time.perf_counter() - mark) * 1000
        self.stdout.write(
            f"  upload to result, one image: {ingest_ms + analyse_ms:.0f} ms (ingestion {ingest_ms:.0f} ms, "
            f"including the one decode; analysis {analyse_ms:.0f} ms)"
        )

        # The bare loop: the network and Grad-CAM on one prepared tensor, nothing else.
        image = job.image
        tensor = preprocess(working_image_pixels(storage.read(image.working_image)), input_size=input_size).tensor
        tensor = tensor[None]
        loaded.network.run(tensor)

        def bare_loop() -> list[float]:
            times = []
            for _ in range(images):
                mark = time.perf_counter()
                loaded.network.run(tensor)
                times.append(time.perf_counter() - mark)
            return times

        lines = []
        for level in levels:
            files = [
                IncomingFile.from_bytes(f"L_CC_{i}.dcm", instance_copy(template, number * 100_000 + level * 1000 + i))
                for i in range(images + level)
            ]
            with _no_enqueue():
                study = study_upload(user=user, files=files, patient_id=f"BENCH-{number}-{level}").study
            job_ids = list(
                InferenceJob.objects.filter(image__study=study, model_version=version)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            for job_id in job_ids[:level]:  # warm-up: one job per thread
                _timed_job(job_id)
            timed = job_ids[level:]
            # The bare loop runs just before and just after the full path and the two are pooled: this machine's
            # speed drifts over a run (it is shared), and bracketing keeps a drift out of the ratio.
            bare_before = bare_loop()
            started = time.perf_counter()
            if level == 1:
                walls = [_timed_job(job_id) for job_id in timed]
            else:
                with ThreadPoolExecutor(max_workers=level) as pool:
                    walls = list(pool.map(_timed_job_own_connection, timed))
            full_ips = len(timed) / (time.perf_counter() - started)
            bare_after = bare_loop()
            bare_ips = 1 / statistics.mean(bare_before + bare_after)
            before_ips, after_ips = 1 / statistics.mean(bare_before), 1 / statistics.mean(bare_after)
            self.stdout.write(
                f"  bare model + Grad-CAM: {bare_ips:6.2f} images/s (just before: {before_ips:.2f}, just after: "
                f"{after_ips:.2f})"
            )
            timings = dict(Prediction.objects.filter(job_id__in=timed).values_list("job_id", "timings_ms"))
            medians = " / ".join(
                f"{statistics.median([t[s] for t in timings.values() if s in t]):.0f}"
                for s in STAGES
                if s != "total_ms"
            )
            # What the stages do not cover: claiming the job (its row, the study's) and storing the Prediction, job,
            # audit and study rows, measured as the job's whole time less its stages' total.
            rows_ms = statistics.median(
                wall - timings[job_id]["total_ms"] for job_id, wall in zip(timed, walls, strict=True)
            )
            self.stdout.write(
                f"  {level} job(s) in flight: full path {full_ips:6.2f} images/s = {full_ips / bare_ips:6.1%} of bare "
                f"(per-job medians, ms: read / preprocess / model+Grad-CAM / heatmap files = {medians}; "
                f"claim and rows {rows_ms:.0f})"
            )
            lines.append(
                f"  {backbone.upper()} {input_size} px, {level} in flight: {full_ips:.2f} vs {bare_ips:.2f} images/s = "
                f"{full_ips / bare_ips:.1%}; upload to result {ingest_ms + analyse_ms:.0f} ms"
            )
        return "\n".join(lines)


def _timed_job(job_id: int) -> float:
    """inference_job_run(), as the task calls it; returns its wall time in ms."""
    from inference.serving.pipeline import inference_job_run

    started = time.perf_counter()
    inference_job_run(job_id=job_id)
    return (time.perf_counter() - started) * 1000


def _timed_job_own_connection(job_id: int) -> float:
    """_timed_job in a thread of a pool, which closes the thread's database connection afterwards."""
    from django.db import connection

    try:
        return _timed_job(job_id)
    finally:
        connection.close()


class _no_enqueue:  # noqa: N801  (a context manager used like a function)
    """Jobs are run here directly, not by a worker: the upload still records its steps in the outbox (that is part
    of the real path), but nothing is handed to the broker."""

    def __enter__(self):
        from core import outbox

        self._original = outbox.outbox_relay
        outbox.outbox_relay = lambda **kwargs: 0

    def __exit__(self, *exc):
        from core import outbox

        outbox.outbox_relay = self._original
