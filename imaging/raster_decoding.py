"""PNG and JPEG: opened lazily by Pillow (the header first, then the pixels), greyscale only, EXIF orientation
honoured. Used through imaging.decoding."""

from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image, ImageOps

from imaging.decoded import (
    FORMAT_NAMES,
    DecodedImage,
    ImageMetadata,
    ImageRejected,
    check_pixel_budget,
    reduce_to_max_side,
)
from imaging.limits import DecodeLimits

GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B"}
# Modes that may still hold a greyscale picture; decided from the pixels in decode_image().
MAYBE_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr"}
# A pixel counts as coloured when its channels spread by more than this (of 255); JPEG chroma rounding on
# a grey picture stays far below it. More than COLOUR_FRACTION of such pixels means a colour image; a few
# coloured annotation marks on a grey mammogram do not.
COLOUR_SPREAD = 24
COLOUR_FRACTION = 0.01


class RasterSource:
    """A PNG or JPEG opened lazily by Pillow: the constructor reads the header only."""

    def __init__(self, data: bytes, fmt: str, limits: DecodeLimits) -> None:
        self.fmt = fmt
        label = FORMAT_NAMES[fmt]
        try:
            # formats= keeps Pillow from trying other parsers on content we sniffed as PNG/JPEG.
            self.image = Image.open(BytesIO(data), formats=[label])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("too_many_pixels", "The image has far too many pixels to be decoded.") from exc
        except Exception as exc:
            raise ImageRejected("corrupt_pixel_data", f"This {label} file is damaged and cannot be opened.") from exc
        columns, rows = self.image.size
        check_pixel_budget(rows, columns, limits)
        mode = self.image.mode
        if mode not in GREY_MODES | MAYBE_COLOUR_MODES:
            raise ImageRejected("unsupported_format", f"This {label} image uses the unsupported pixel format {mode}.")
        self.metadata = ImageMetadata(
            source_format=fmt,
            rows=rows,
            columns=columns,
            bits_stored=16 if mode.startswith("I") else 8,
            photometric_interpretation="MONOCHROME2" if mode in GREY_MODES else "RGB",
            extra={"pil_mode": mode},
        )

    def integers(self) -> tuple[np.ndarray, int]:
        """The full-resolution greyscale integers (uint8, or uint16 for 16-bit PNG) and the value that is white;
        decoded once and kept, so the display pixels and the viewer's pixels come from the same decode. Real colour
        is refused; a grey picture saved as RGB is averaged."""
        if getattr(self, "_integers", None) is not None:
            return self._integers
        label = FORMAT_NAMES[self.fmt]
        try:
            self.image.load()
            # Viewers honour the EXIF orientation; the chest-wall side must match what the user saw.
            image = ImageOps.exif_transpose(self.image)
            self._integers = self._grey_integers(image)
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("too_many_pixels", "The image has far too many pixels to be decoded.") from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise ImageRejected("corrupt_pixel_data", f"This {label} file is damaged or truncated.") from exc
        self.metadata.photometric_interpretation = "MONOCHROME2"
        return self._integers

    def decode(self, max_side: int | None = None) -> DecodedImage:
        """float32 [0, 1] pixels, reduced to max_side on the integers first: a full-size float copy of a huge
        picture (a 7,740 x 7,740 PNG is 240 MB as float32) is never made."""
        values, white = self.integers()
        pixels = reduce_to_max_side(values, max_side).astype(np.float32) / np.float32(white)
        return DecodedImage(pixels=np.clip(pixels, 0.0, 1.0, out=pixels), metadata=self.metadata)

    def _grey_integers(self, image: Image.Image) -> tuple[np.ndarray, int]:
        if image.mode.startswith("I"):
            values = np.asarray(image)
            if values.dtype != np.uint16:
                values = np.clip(values, 0, 65535).astype(np.uint16)
            # 2**n - 1 for the bit length n of the largest value (at least 8): a 12-bit image in a 16-bit PNG fills
            # [0, 1] like its DICOM would, a full-range one uses 65535.
            return values, (1 << max(8, int(values.max()).bit_length())) - 1
        if image.mode in GREY_MODES:
            grey = image.getchannel(0) if image.mode in ("LA", "La") else image.convert("L")
            return np.asarray(grey), 255
        rgb = np.asarray(image.convert("RGB"))
        spread = rgb.max(axis=2) - rgb.min(axis=2)
        if np.count_nonzero(spread > COLOUR_SPREAD) > COLOUR_FRACTION * spread.size:
            raise ImageRejected("colour", f"This {FORMAT_NAMES[self.fmt]} image is in colour, not a mammogram.")
        self.metadata.extra["converted_from"] = image.mode
        return np.rint(rgb.mean(axis=2, dtype=np.float32)).astype(np.uint8), 255
