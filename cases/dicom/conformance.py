"""What the platform accepts over DICOM (the listener and STOW-RS): SOP classes and transfer syntaxes.

The transfer syntaxes are computed, not listed: exactly those the platform's decoder can read with the installed
pydicom plugins (the test imaging's decoder applies before it decodes), so the listener never accepts an encoding
that ingestion would then refuse.
"""

from __future__ import annotations

from pydicom.pixels import get_decoder
from pydicom.uid import UID, AllTransferSyntaxes

from imaging.mammogram import ACCEPTED_SOP_CLASSES

__all__ = ["ACCEPTED_SOP_CLASSES", "decodable_transfer_syntaxes"]


def decodable_transfer_syntaxes() -> list[UID]:
    """Every transfer syntax the platform's decoder can read (the same test as imaging's decoder applies)."""
    found = []
    for uid in AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                found.append(UID(uid))
        except NotImplementedError:
            continue
    return found
