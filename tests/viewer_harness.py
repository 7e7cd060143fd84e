"""A small stand-alone page for the reading viewer, served by a private HTTP server with a strict
Content-Security-Policy: the viewer's real template (templates/reading/_viewer.html), its real static files, and the
real viewer pixels (imaging.viewer_pixels) and heatmap overlays of tests/viewer_exam.py. It lets the viewer be
tested in chromium without the rest of the platform; the reading pages themselves are tested through Django.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.template.loader import render_to_string

from imaging.heatmaps import heatmap_pngs
from imaging.viewer_pixels import CONTENT_TYPE, stored_values, viewer_pixels_pack
from tests.viewer_exam import ExamImage, heatmap_at

STATIC_ROOT = Path(__file__).resolve().parent.parent / "mammo_platform" / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
FORM = """
<form id="read-form" method="post" action="#">
  {fieldsets}
  <label for="comments">Comments</label><textarea id="comments" name="comments"></textarea>
</form>"""
FIELDSET = """
  <fieldset class="breast-form" data-side="{side}">
    <legend>{name} breast</legend>
    <input type="hidden" name="{side}-mark_image"><input type="hidden" name="{side}-mark_row">
    <input type="hidden" name="{side}-mark_column">
    <span class="mark-status" data-side="{side}"></span>
    <button type="button" class="clear-mark" data-side="{side}">Clear mark</button>
  </fieldset>"""


@dataclass
class HarnessImage:
    id: int
    exam_image: ExamImage
    pixels: bytes
    overlay: bytes
    photometric: str


@dataclass
class Harness:
    images: dict[int, HarnessImage]
    requests: list[str] = field(default_factory=list)
    pages: dict[str, bytes] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def page(self, name: str, config: dict, *, form: bool = True) -> str:
        """Publish a viewer page at /<name>.html and return its URL."""
        viewer = render_to_string("reading/_viewer.html", {"viewer_config": config})
        fieldsets = "".join(FIELDSET.format(side=s, name=n) for s, n in (("R", "Right"), ("L", "Left")))
        body = viewer + (FORM.format(fieldsets=fieldsets) if form else "")
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Viewer harness</title></head>'
            f'<body class="harness">{body}</body></html>'
        )
        self.pages[f"/{name}.html"] = html.encode()
        return f"{self.base_url}/{name}.html"

    def study(self, *, study_id: int, role: str, date: str, images: list[int]) -> dict:
        """A study entry of the viewer configuration (the same shape cases/reading/viewer.py produces)."""
        entries = []
        for image_id in images:
            item = self.images[image_id]
            exam = item.exam_image
            entries.append(
                {
                    "id": image_id,
                    "laterality": exam.laterality,
                    "view": exam.view,
                    "rows": exam.rows,
                    "columns": exam.columns,
                    "photometric": item.photometric,
                    "slope": 1,
                    "intercept": 0,
                    "patientOrientation": exam.patient_orientation,
                    "voi": [
                        {"label": f"DICOM {name.lower()}", "center": c, "width": w}
                        for (c, w), name in zip(exam.windows, ("STANDARD", "NARROW"), strict=False)
                    ],
                    "pixelsUrl": f"/pixels/{image_id}",
                    "overlayUrl": f"/overlay/{image_id}.png",
                }
            )
        return {"id": study_id, "role": role, "date": date, "images": entries}

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def build_harness(exams: dict[int, ExamImage]) -> Harness:
    images = {}
    for image_id, exam in exams.items():
        values = stored_values(filename=exam.filename, data=exam.data)
        _, overlay = heatmap_pngs(heatmap_at(exam))
        images[image_id] = HarnessImage(
            id=image_id,
            exam_image=exam,
            pixels=viewer_pixels_pack(values.values),
            overlay=overlay,
            photometric=values.photometric_interpretation,
        )
    harness = Harness(images=images)
    harness.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(harness))
    threading.Thread(target=harness.server.serve_forever, daemon=True).start()
    return harness


def _handler_for(harness: Harness):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the test reads harness.requests instead
            pass

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            harness.requests.append(path)
            if path in harness.pages:
                return self._send(harness.pages[path], "text/html; charset=utf-8")
            if path.startswith("/pixels/"):
                item = harness.images.get(_int(path.removeprefix("/pixels/")))
                if item:
                    return self._send(item.pixels, CONTENT_TYPE, encoding="gzip")
            if path.startswith("/overlay/") and path.endswith(".png"):
                item = harness.images.get(_int(path.removeprefix("/overlay/").removesuffix(".png")))
                if item:
                    return self._send(item.overlay, "image/png")
            if path.startswith("/static/"):
                target = (STATIC_ROOT / path.removeprefix("/static/")).resolve()
                if STATIC_ROOT in target.parents and target.is_file():
                    kind = "text/javascript" if target.suffix == ".js" else mimetypes.guess_type(target.name)[0]
                    # Cacheable like whitenoise serves static files (60 s), so a second page load is a warm one.
                    return self._send(
                        target.read_bytes(), kind or "application/octet-stream", cache="public, max-age=60"
                    )
            return self._send(json.dumps({"detail": "not found"}).encode(), "application/json", status=404)

        def _send(
            self,
            body: bytes,
            content_type: str,
            *,
            encoding: str = "",
            status: int = 200,
            cache: str = "private, no-store",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Cache-Control", cache)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1
