"""Peak memory of each web worker while it receives hostile or huge uploads (issue 9.3, "Uploads can exhaust memory").

    .venv/bin/python benchmarks/upload_memory.py [--tree OTHER_CHECKOUT] [--only SCENARIO ...]

gunicorn is started with mammo_platform/gunicorn_conf.py (WEB_CONCURRENCY / WEB_THREADS from the environment) on a
throwaway sandbox (benchmarks/sandbox.py), a technologist signs in through the API, and these are sent one scenario
after the other, each through POST /api/studies/:
  zero-png      a 57 KB all-zero PNG of 7,740 x 7,740 pixels (a decompression bomb: 60 MB of pixels)
  dicom-200mb   a 200 MB DICOM-ish file: an MG header of 10,000 x 10,000 16-bit pixels with their uncompressed data
  8-zero-pngs   8 such PNGs (each a little different, so none is a duplicate) in 8 requests at once
  1gb-declared  a request declaring Content-Length: 1 GB (a body is then streamed until the server answers)
and through DICOMweb STOW-RS (POST /dicomweb/studies, multipart/related; type="application/dicom"):
  stow-200mb    one part, the 200 MB DICOM above (a body of 200 MB)
  stow-50       50 instances in one body: synthetic MG mammograms (tests/dicom_factory.py's breast phantom) of
                1,600 x 1,200 16-bit pixels, 3.7 MB each (a body of 183 MB), all accepted and stored
While a scenario runs, the resident memory (RSS) of every gunicorn worker process is sampled every 10 ms (psutil);
the table gives each scenario's answers and, per worker, RSS before the scenario and its peak during it.

--tree runs another checkout's code (for instance an older commit in a `git worktree`) with this checkout's gunicorn
configuration and sandbox: the figures before and after a change come from the same script
(docs/performance-figures.md, "Upload memory"). Nothing outside the sandbox is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import secrets
import socket
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox import Sandbox  # noqa: E402

SIDE = 7740
MB = 1024 * 1024


# ---- inputs ---------------------------------------------------------------------------------------------------------


def zero_png(marker: int = 0) -> bytes:
    """An 8-bit greyscale PNG of SIDE x SIDE zeros (one pixel set to `marker`, so copies differ), written by hand
    with maximum deflate compression: about 57 KB for 60 MB of pixels."""
    raw = bytearray(b"\x00" * ((SIDE + 1) * SIDE))  # each row: filter byte 0, then SIDE zero pixels
    raw[1] = marker % 256

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = SIDE.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit greyscale, no interlace
    idat = zlib.compress(bytes(raw), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def big_dicom(rows: int = 10_000, columns: int = 10_000) -> bytes:
    """An MG DICOM of rows x columns uncompressed 16-bit pixels (200 MB at 10,000 x 10,000), in little memory."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.ImageLaterality, ds.ViewPosition = "MG", "BENCH-MEM", "L", "CC"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.full((rows, columns), 1000, dtype=np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# ---- measurement ----------------------------------------------------------------------------------------------------


class Sampler:
    """RSS of every worker process of one gunicorn master, sampled in a thread."""

    def __init__(self, master_pid: int, interval: float = 0.01):
        self.master = psutil.Process(master_pid)
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def workers(self) -> list[psutil.Process]:
        return self.master.children()

    def rss(self) -> dict[int, int]:
        out = {}
        for proc in self.workers():
            with contextlib.suppress(psutil.NoSuchProcess):
                out[proc.pid] = proc.memory_info().rss
        return out

    def __enter__(self) -> Sampler:
        self.peaks = self.rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, rss in self.rss().items():
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)  # a last look once the answers are in
        self._stop.set()
        self._thread.join()


def stow_instances(count: int = 50) -> list[bytes]:
    """`count` different MG instances of one study, the breast phantom the tests use."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pydicom.uid import generate_uid

    from tests.dicom_factory import make_dicom

    study = generate_uid()
    return [
        make_dicom(rows=1600, columns=1200, study_uid=study, patient_id="BENCH-STOW", sop_uid=generate_uid(),
                   laterality="LR"[n % 2], view=("CC", "MLO")[n // 2 % 2])
        for n in range(count)
    ]  # fmt: skip


def stow(url: str, token: str, parts: list[bytes]) -> str:
    """One STOW-RS request; its status and how many instances were stored and failed."""
    boundary = secrets.token_hex(16)
    body = (
        b"".join(
            b"".join((f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part, b"\r\n"))
            for part in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    response = requests.post(
        f"{url}/dicomweb/studies",
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
        data=body,
        timeout=900,
    )
    del body
    try:
        answer = response.json()
        stored = len(answer.get("00081199", {}).get("Value", []))
        failed = answer.get("00081198", {}).get("Value", [])
        reasons = sorted({f"0x{f['00081197']['Value'][0]:04X}" for f in failed if "00081197" in f})
        text = f"{stored} stored, {len(failed)} failed" + (f" ({', '.join(reasons)})" if reasons else "")
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:70]
    return f"{response.status_code} {text}"


def upload(url: str, token: str, name: str, data: bytes, patient: str) -> str:
    response = requests.post(
        f"{url}/api/studies/",
        headers={"Authorization": f"Token {token}"},
        files={"files": (name, data)},
        data={"patient_id": patient, "laterality": "L", "view": "CC"},
        timeout=600,
    )
    try:
        body = response.json()
        outcome = body.get("files") or body.get("outcomes") or body.get("detail") or body
        if isinstance(outcome, list) and outcome:
            outcome = outcome[0]
        if isinstance(outcome, dict):
            outcome = outcome.get("status", "") + (": " + outcome.get("reason", "") if outcome.get("reason") else "")
        text = str(outcome)
    except ValueError:
        text = response.text[:80]
    return f"{response.status_code} {' '.join(text.split())[:70]}"


def declared_gigabyte(port: int, token: str) -> str:
    """A request that declares 1 GB; the body is streamed (zeros, inside a multipart part) until the server answers
    or closes the connection. How much was sent before that is part of the answer."""
    boundary = "benchboundary"
    head = (
        f"POST /api/studies/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {1024 * MB}\r\n\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.dcm"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        block = b"\x00" * MB
        deadline = time.monotonic() + 600
        while sent < 1024 * MB and time.monotonic() < deadline:
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            try:
                sent += sock.send(block)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
        sock.setblocking(True)
        sock.settimeout(120)
        try:
            while b"\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "no answer (connection closed)"
    return f"{status.replace('HTTP/1.1 ', '')}; {sent / MB:.0f} MB of the body sent"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=None, help="Another checkout whose code runs (default: this one).")
    parser.add_argument("--only", nargs="+", default=None, metavar="SCENARIO", help="Run only these scenarios.")
    args = parser.parse_args()

    password = secrets.token_urlsafe(16)
    box_args = {"tree": Path(args.tree)} if args.tree else {}
    png = zero_png()
    pngs = [zero_png(marker) for marker in range(1, 9)]
    dicom = big_dicom()
    wanted = set(args.only or [])
    instances = stow_instances() if not wanted or "stow-50" in wanted else []
    print(
        f"inputs: PNG {len(png) / 1024:.0f} KB ({SIDE} x {SIDE}), DICOM {len(dicom) / MB:.0f} MB, "
        f"{len(instances)} STOW-RS instances of {sum(map(len, instances)) / MB:.0f} MB together",
        flush=True,
    )
    rows = []
    with Sandbox(**box_args) as box:
        box.shell(
            "from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_user('bench_technologist', password={password!r}, role='technologist')"
        )
        box.start()
        reply = requests.post(
            f"{box.url}/api/auth/token/", data={"username": "bench_technologist", "password": password}, timeout=60
        )
        reply.raise_for_status()
        token = reply.json()["token"]
        sampler = Sampler(box.server.pid)
        time.sleep(2)
        scenarios = [
            ("zero-png", lambda: [upload(box.url, token, "L_CC.png", png, "MEM-1")]),
            ("dicom-200mb", lambda: [upload(box.url, token, "big.dcm", dicom, "")]),
            (
                "8-zero-pngs",
                lambda: list(
                    ThreadPoolExecutor(8).map(
                        lambda i: upload(box.url, token, f"L_CC_{i}.png", pngs[i], f"MEM-{10 + i}"), range(8)
                    )
                ),
            ),
            ("1gb-declared", lambda: [declared_gigabyte(box.port, token)]),
            ("stow-200mb", lambda: [stow(box.url, token, [dicom])]),
            ("stow-50", lambda: [stow(box.url, token, instances)]),
        ]
        scenarios = [s for s in scenarios if not wanted or s[0] in wanted]
        for name, run in scenarios:
            before = sampler.rss()
            started = time.monotonic()
            with sampler:
                answers = run()
            seconds = time.monotonic() - started
            rows.append((name, answers, before, dict(sampler.peaks), seconds))
            print(f"{name}: done in {seconds:.1f} s", flush=True)
        alive = box.server.poll() is None
        log_tail = box.log.read_text(errors="replace")[-1500:]

    print()
    print(f"{'scenario':<13} {'seconds':>7}  {'per worker: RSS before -> peak (MB)':<60} answers")
    for name, answers, before, peaks, seconds in rows:
        per_worker = ", ".join(f"{before.get(pid, 0) / MB:.0f}->{peak / MB:.0f}" for pid, peak in sorted(peaks.items()))
        summary = "; ".join(f"{answer} x{answers.count(answer)}" for answer in dict.fromkeys(answers))
        print(f"{name:<13} {seconds:>7.1f}  {per_worker:<60} {summary}")
    for name, _, before, peaks, _ in rows:
        if name == "8-zero-pngs":
            total_before, total_peak = sum(before.values()) / MB, sum(peaks.values()) / MB
            print(f"{name}, all workers together: {total_before:.0f} MB -> peak {total_peak:.0f} MB (sum of the peaks)")
    print(f"gunicorn still running after the scenarios: {alive}")
    if not alive:
        print(log_tail)
    print(json.dumps({"workers_alive": alive}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
