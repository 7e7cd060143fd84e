"""Is this a 2D mammogram the model was made for? Decided from the DICOM header (SOP class, Modality, body part,
frames) before any pixel is decoded; PNG and JPEG carry no such header, so for them (and for DICOMs too) the
pixels are checked afterwards: a picture in which no breast can be found is refused by ingestion
(inference.serving.preprocessing.breast_found).
"""

from __future__ import annotations

from pydicom.uid import UID

from imaging.decoding import ImageMetadata, ImageRejected

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
BREAST_TOMOSYNTHESIS = "1.2.840.10008.5.1.4.1.1.13.1.3"
# What the platform accepts, by SOP class (the DICOM listener offers exactly these).
ACCEPTED_SOP_CLASSES = {
    MG_FOR_PRESENTATION: "Digital Mammography X-Ray Image Storage - For Presentation",
    MG_FOR_PROCESSING: "Digital Mammography X-Ray Image Storage - For Processing",
    SECONDARY_CAPTURE: "Secondary Capture Image Storage (digitised film, as in CBIS-DDSM)",
}
MADE_FOR = "The AI was made for 2D screening mammograms (CC and MLO views); it must not score other images."
# What a Secondary Capture of a mammogram may give as its Modality: MG; CR and DX (computed and digital
# radiography units also image breasts); OT or none (digitised film). Any other modality (CT, MR, US, PT, NM...)
# is not mammography, whatever its BodyPartExamined says: a CT slice of the chest "of the breast" is no mammogram.
SECONDARY_CAPTURE_MAMMOGRAPHY_MODALITIES = {"MG", "CR", "DX", "OT", ""}


def mammogram_check(metadata: ImageMetadata) -> None:
    """Raise ImageRejected('not_a_mammogram') for a DICOM that says it is something else."""
    if metadata.source_format != "dicom":
        return
    sop_class = metadata.sop_class_uid
    modality = (metadata.modality or "").upper()
    body_part = str(metadata.extra.get("BodyPartExamined", "")).strip().upper()
    if sop_class == BREAST_TOMOSYNTHESIS:
        raise ImageRejected("not_a_mammogram", f"This is a breast tomosynthesis (3D) object. {MADE_FOR}")
    if body_part and body_part != "BREAST":
        raise ImageRejected(
            "not_a_mammogram", f"This DICOM image is of the {body_part.lower()}, not the breast. {MADE_FOR}"
        )
    if sop_class in (MG_FOR_PRESENTATION, MG_FOR_PROCESSING):
        return
    if sop_class == SECONDARY_CAPTURE:
        # Digitised film (CBIS-DDSM) arrives as Secondary Capture: accepted when it says it is a mammogram.
        if modality not in SECONDARY_CAPTURE_MAMMOGRAPHY_MODALITIES:
            raise ImageRejected(
                "not_a_mammogram",
                f"This Secondary Capture comes from {modality} imaging, not mammography (whatever its "
                f"BodyPartExamined says). {MADE_FOR}",
            )
        if modality == "MG" or body_part == "BREAST":
            return
        raise ImageRejected(
            "not_a_mammogram",
            f"This Secondary Capture image does not say it is a mammogram (Modality {modality or 'not given'}, "
            f"no BodyPartExamined BREAST). {MADE_FOR}",
        )
    name = _sop_class_name(sop_class)
    what = f"a {modality} image ({name})" if modality else f"a {name} object"
    raise ImageRejected("not_a_mammogram", f"This DICOM file is {what}, not a mammogram. {MADE_FOR}")


def _sop_class_name(sop_class: str) -> str:
    if not sop_class:
        return "DICOM object without a SOP Class"
    name = UID(sop_class).name
    return name if name != sop_class else f"SOP Class {sop_class}"
