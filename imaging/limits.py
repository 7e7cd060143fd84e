"""How much an image may cost to decode: file size and pixel count, checked from the headers before any pixel
is allocated (imaging.decoding)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeLimits:
    max_file_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 60_000_000  # rows * columns


DEFAULT_LIMITS = DecodeLimits()


def upload_limits(settings) -> DecodeLimits:
    """The limits configured for uploaded files (MAMMO_MAX_FILE_BYTES, MAMMO_MAX_PIXELS on a settings object);
    the worker applies the same ones when it reads a stored original."""
    return DecodeLimits(max_file_bytes=settings.MAMMO_MAX_FILE_BYTES, max_pixels=settings.MAMMO_MAX_PIXELS)
