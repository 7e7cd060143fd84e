"""The reading viewer's pixels of an image (imaging.viewer_pixels). Ingestion makes them with the image's other
files; for an image stored before they existed (or whose file went missing) they are made here from the stored
original the first time someone opens it, and recorded on the row. Making them costs one full-resolution decode
and a gzip pass (0.3 to 1 s for a 4,600 x 2,800 16-bit mammogram on this machine's kind of core): concurrent
requests of one process for the same image wait for one maker instead of all making them."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from django.conf import settings

from cases.models import Image
from core import storage
from core.errors import ApplicationError
from imaging.decoding import ImageRejected
from imaging.limits import upload_limits
from imaging.viewer_pixels import stored_values, viewer_pixels_pack

logger = logging.getLogger(__name__)
_making: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)  # per SHA-256 (the dict itself is safe
# enough: a lost race makes two locks for one image, which only means that image is made twice)


def image_viewer_pixels(*, image: Image) -> str:
    """The storage name of the image's viewer pixels, made now if they do not exist yet (storage.put is atomic, so
    two processes making them at once write the same bytes to the same name)."""
    name = image.viewer_pixels or storage.viewer_pixels_name(image.sha256)
    if storage.exists(name):
        return name
    with _making[image.sha256]:
        if not storage.exists(name):
            _make(image, name)
    if image.viewer_pixels != name:
        Image.objects.filter(pk=image.pk).update(viewer_pixels=name)  # referenced: storage reconciliation keeps it
        image.viewer_pixels = name
    return name


def _make(image: Image, name: str) -> None:
    started = time.perf_counter()
    try:
        data = storage.read(image.original)
    except FileNotFoundError:
        raise ApplicationError("The original of this image is missing from storage.") from None
    try:
        values = stored_values(filename=image.original_filename, data=data, limits=upload_limits(settings))
    except ImageRejected as exc:  # it was accepted once: a damaged file in storage, not the user's doing
        logger.error("Image %s: the stored original cannot be decoded for the viewer: %s", image.pk, exc.reason)
        raise ApplicationError(f"This image cannot be shown: {exc.reason}") from exc
    if values.values.shape != (image.rows, image.columns):
        raise ApplicationError("This image's pixels do not match its recorded size.")
    storage.put(name, viewer_pixels_pack(values.values), overwrite=True)
    logger.info("Image %s: viewer pixels made in %.2f s", image.pk, time.perf_counter() - started)
