"""Storage statuses (PS3.4 Annex B.2.3, PS3.7 Annex C) shared by the C-STORE listener and STOW-RS.

One table maps the platform's rejection codes (ImageRejected.code and the upload service's own codes) to a
DICOM status. The low byte of the A7xx, A9xx and Cxxx families is implementation-specific (PS3.4 B.2.3); we use
it to tell the causes apart in the peer's log, and STOW-RS reports the family's base value, which is what PS3.18
lists as Failure Reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS = 0x0000
WARNING_COERCED = 0xB000  # stored, but the platform records some values differently from the header
OUT_OF_RESOURCES = 0xA700  # beyond the configured size or pixel limits
OUT_OF_RESOURCES_STORAGE = 0xA701  # the disk refused the write: worth trying again later
OUT_OF_RESOURCES_DATABASE = 0xA702  # the database did not answer: worth trying again later
DATASET_MISMATCH = 0xA900  # not what its SOP Class promises (frames, colour, no pixels) or header vs request
CANNOT_UNDERSTAND = 0xC000  # damaged or undecodable
CANNOT_PROCESS_VIEW = 0xC001  # readable, but no breast found, or its side or view cannot be known
CANNOT_PROCESS_PATIENT = 0xC002  # no patient identity, or another patient's image in this study
PROCESSING_FAILURE = 0x0110  # a fault of ours (logged with its traceback)
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124

STATUS_FOR_CODE = {
    "file_too_large": OUT_OF_RESOURCES,
    "too_many_pixels": OUT_OF_RESOURCES,
    "multi_frame": DATASET_MISMATCH,
    "colour": DATASET_MISMATCH,
    "no_pixel_data": DATASET_MISMATCH,
    "bad_bit_depth": DATASET_MISMATCH,
    "unsupported_format": DATASET_MISMATCH,
    "sop_mismatch": DATASET_MISMATCH,
    "not_a_mammogram": DATASET_MISMATCH,
    "not_dicom": CANNOT_UNDERSTAND,
    "empty_file": CANNOT_UNDERSTAND,
    "corrupt_pixel_data": CANNOT_UNDERSTAND,
    "unsupported_transfer_syntax": CANNOT_UNDERSTAND,
    "extension_mismatch": CANNOT_UNDERSTAND,
    "laterality_missing": CANNOT_PROCESS_VIEW,
    "view_missing": CANNOT_PROCESS_VIEW,
    "no_breast": CANNOT_PROCESS_VIEW,
    "patient_missing": CANNOT_PROCESS_PATIENT,
    "patient_mismatch": CANNOT_PROCESS_PATIENT,
    "patient_unconfirmed": CANNOT_PROCESS_PATIENT,
    "sop_class_not_supported": SOP_CLASS_NOT_SUPPORTED,
    "not_authorized": NOT_AUTHORIZED,
    "storage_unavailable": OUT_OF_RESOURCES_STORAGE,
    "database_unavailable": OUT_OF_RESOURCES_DATABASE,
    "internal_error": PROCESSING_FAILURE,
}


@dataclass(frozen=True)
class StoreStatus:
    code: int
    comment: str = ""  # for the Error Comment (0000,0902): LO, at most 64 characters

    @property
    def is_failure(self) -> bool:
        return not (self.code == SUCCESS or 0xB000 <= self.code <= 0xBFFF)

    @property
    def failure_reason(self) -> int:
        """The value for STOW-RS's Failure Reason (0008,1197): the family's base code."""
        family = self.code & 0xFF00
        return family if family in (0xA700, 0xA900, 0xC000) else self.code

    def hex(self) -> str:
        return f"0x{self.code:04X}"


# What a DICOM peer (a modality, a PACS) is told instead of the reason the upload page shows, where that reason
# advises the page's user (a form field, a file name): what is missing from the header, by tag.
PEER_REASONS = {
    "laterality_missing": "Breast side unknown: set ImageLaterality (0020,0062) to L or R",
    "view_missing": "View unknown: set ViewPosition (0018,5101) to CC or MLO",
    "patient_missing": "No PatientID (0010,0020) in the header",
}


def peer_reason(code: str, reason: str) -> str:
    """The reason as a DICOM peer should read it."""
    return PEER_REASONS.get(code, reason)


def status_for_rejection(code: str, reason: str) -> StoreStatus:
    """The DICOM status for a rejection code (unknown codes are things we could not understand), with the reason
    worded for a DICOM peer."""
    return StoreStatus(STATUS_FOR_CODE.get(code, CANNOT_UNDERSTAND), error_comment(peer_reason(code, reason)))


def error_comment(reason: str) -> str:
    """An Error Comment value: LO (64 characters of the default repertoire, no backslash)."""
    text = " ".join(reason.replace("\\", "/").split())
    text = text.encode("ascii", "replace").decode("ascii")
    return text if len(text) <= 64 else text[:61] + "..."
