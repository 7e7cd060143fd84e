"""The coded concepts of the Mammography CAD SR, as (code value, coding scheme designator, code meaning).

Every code here is a standard DICOM (DCM), SNOMED CT (SCT), UCUM or RFC 5646 code from PS3.16; the meanings are
PS3.16's, without the zero-width spaces pydicom's dictionary carries in some of them. No code that names a
malignancy, a benign finding or a BI-RADS assessment is defined here on purpose: the builder has none to emit.
docs/dicom-cad-sr.md says where each one is used and why.
"""

from __future__ import annotations

Code = tuple[str, str, str]

# TID 4000 Mammography CAD Document Root, TID 1204 Language of Content Item and Descendants
MAMMOGRAPHY_CAD_REPORT: Code = ("111036", "DCM", "Mammography CAD Report")
LANGUAGE: Code = ("121049", "DCM", "Language of Content Item and Descendants")
ENGLISH_US: Code = ("en-US", "RFC5646", "English (United States)")
IMAGE_LIBRARY: Code = ("111028", "DCM", "Image Library")

# TID 4020 CAD Image Library Entry
IMAGE_LATERALITY: Code = ("111027", "DCM", "Image Laterality")
IMAGE_VIEW: Code = ("111031", "DCM", "Image View")
IMAGE_VIEW_MODIFIER: Code = ("111032", "DCM", "Image View Modifier")
PATIENT_ORIENTATION_ROW: Code = ("111044", "DCM", "Patient Orientation Row")
PATIENT_ORIENTATION_COLUMN: Code = ("111043", "DCM", "Patient Orientation Column")
STUDY_DATE: Code = ("111060", "DCM", "Study Date")
STUDY_TIME: Code = ("111061", "DCM", "Study Time")
CONTENT_DATE: Code = ("111018", "DCM", "Content Date")
CONTENT_TIME: Code = ("111019", "DCM", "Content Time")
HORIZONTAL_PIXEL_SPACING: Code = ("111026", "DCM", "Horizontal Pixel Spacing")
VERTICAL_PIXEL_SPACING: Code = ("111066", "DCM", "Vertical Pixel Spacing")

# CID 6022 Side (the $ImageLaterality of TID 4000 row 4)
SIDES: dict[str, Code] = {
    "L": ("80248007", "SCT", "Left breast"),
    "R": ("73056007", "SCT", "Right breast"),
    "B": ("63762007", "SCT", "Both breasts"),
}
# CID 4014 View for Mammography ($ImageView), keyed by the View Position (0018,5101) defined terms for MG.
VIEWS: dict[str, Code] = {
    "CC": ("399162004", "SCT", "cranio-caudal"),
    "MLO": ("399368009", "SCT", "medio-lateral oblique"),
    "ML": ("399260004", "SCT", "medial-lateral"),
    "LM": ("399352003", "SCT", "latero-medial"),
    "LMO": ("399099002", "SCT", "latero-medial oblique"),
    "XCCL": ("399192008", "SCT", "cranio-caudal exaggerated laterally"),
    "XCCM": ("399101009", "SCT", "cranio-caudal exaggerated medially"),
    "FB": ("399196006", "SCT", "caudo-cranial"),
    "SIO": ("399188001", "SCT", "superolateral to inferomedial oblique"),
    "ISO": ("441555000", "SCT", "inferomedial to superolateral oblique"),
    "SPECIMEN": ("127457009", "SCT", "tissue specimen from breast"),
}
# CID 4015 View Modifier for Mammography ($ImageViewMod): SCT code values accepted from a source's View Modifier
# Code Sequence (copied with the source's meaning).
VIEW_MODIFIER_VALUES = frozenset(
    {"399226006", "442581004", "442580003", "441752004", "415670009", "399055006", "399110001", "399011000",
     "399163009", "399209000", "399161006", "442593008", "399197002", "414493004"}
)  # fmt: skip

# TID 4001 Mammography CAD Overall Impression/Recommendation; CID 6047 CAD Processing and Findings Summary
CAD_PROCESSING_AND_FINDINGS_SUMMARY: Code = ("111017", "DCM", "CAD Processing and Findings Summary")
ALL_SUCCEEDED_WITHOUT_FINDINGS: Code = ("111241", "DCM", "All algorithms succeeded; without findings")
ALL_SUCCEEDED_WITH_FINDINGS: Code = ("111242", "DCM", "All algorithms succeeded; with findings")
NOT_ALL_SUCCEEDED_WITHOUT_FINDINGS: Code = ("111243", "DCM", "Not all algorithms succeeded; without findings")
NOT_ALL_SUCCEEDED_WITH_FINDINGS: Code = ("111244", "DCM", "Not all algorithms succeeded; with findings")
NONE_SUCCEEDED_WITHOUT_FINDINGS: Code = ("111245", "DCM", "No algorithms succeeded; without findings")

# TID 4002 Mammography CAD Impression/Recommendation Body, TID 4003 Individual Impression/Recommendation
INDIVIDUAL_IMPRESSION: Code = ("111034", "DCM", "Individual Impression/Recommendation")
IMPRESSION_DESCRIPTION: Code = ("111033", "DCM", "Impression Description")
CERTAINTY_OF_IMPRESSION: Code = ("111013", "DCM", "Certainty of Impression")

# CID 6034 CAD Output Intended Use (the value of Rendering Intent)
RENDERING_INTENT: Code = ("111056", "DCM", "Rendering Intent")
PRESENTATION_REQUIRED: Code = ("111150", "DCM", "Presentation Required: Rendering device is expected to present")
NOT_FOR_PRESENTATION: Code = ("111152", "DCM", "Not for Presentation: Rendering device expected not to present")

# TID 4006 Mammography CAD Single Image Finding (values from CID 6014), TID 4013, TID 4021, TID 4108, TID 4007
SINGLE_IMAGE_FINDING: Code = ("111059", "DCM", "Single Image Finding")
SELECTED_REGION: Code = ("111099", "DCM", "Selected region")
SELECTED_REGION_DESCRIPTION: Code = ("111058", "DCM", "Selected Region Description")
CERTAINTY_OF_FINDING: Code = ("111012", "DCM", "Certainty of Finding")
CENTER: Code = ("111010", "DCM", "Center")
TRACKING_IDENTIFIER: Code = ("112039", "DCM", "Tracking Identifier")
TRACKING_UID: Code = ("112040", "DCM", "Tracking Unique Identifier")
BREAST_COMPOSITION: Code = ("129715009", "SCT", "Breast composition")
# CID 6000 Overall Breast Composition, keyed by the BI-RADS 5th edition category letter
COMPOSITIONS: dict[str, Code] = {
    "a": ("129716005", "SCT", "Almost entirely fat"),
    "b": ("129717001", "SCT", "Scattered fibroglandular densities"),
    "c": ("129718006", "SCT", "Heterogeneously dense"),
    "d": ("129719003", "SCT", "Extremely dense"),
}

# TID 4019 Algorithm Identification
ALGORITHM_NAME: Code = ("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION: Code = ("111003", "DCM", "Algorithm Version")
ALGORITHM_MANUFACTURER: Code = ("122405", "DCM", "Algorithm Manufacturer")
ALGORITHM_PARAMETERS: Code = ("111002", "DCM", "Algorithm Parameters")

# TID 4000 rows 6-9, TID 4015-4018; CID 6042 Result Status; CID 6043 Mammography CAD Analysis Type
SUMMARY_OF_DETECTIONS: Code = ("111064", "DCM", "Summary of Detections")
SUMMARY_OF_ANALYSES: Code = ("111065", "DCM", "Summary of Analyses")
SUCCESSFUL_DETECTIONS: Code = ("111063", "DCM", "Successful Detections")
FAILED_DETECTIONS: Code = ("111025", "DCM", "Failed Detections")
SUCCESSFUL_ANALYSES: Code = ("111062", "DCM", "Successful Analyses")
DETECTION_PERFORMED: Code = ("111022", "DCM", "Detection Performed")
ANALYSIS_PERFORMED: Code = ("111004", "DCM", "Analysis Performed")
SUCCEEDED: Code = ("111222", "DCM", "Succeeded")
PARTIALLY_SUCCEEDED: Code = ("111223", "DCM", "Partially Succeeded")
FAILED: Code = ("111224", "DCM", "Failed")
NOT_ATTEMPTED: Code = ("111225", "DCM", "Not Attempted")
INDIVIDUAL_IMPRESSION_ANALYSIS: Code = ("111233", "DCM", "Individual Impression/Recommendation Analysis")
OVERALL_IMPRESSION_ANALYSIS: Code = ("111234", "DCM", "Overall Impression/Recommendation Analysis")

# UCUM units
PERCENT: Code = ("%", "UCUM", "Percent")
MILLIMETER: Code = ("mm", "UCUM", "millimeter")
