"""What a DICOM object (or an API answer) claims about malignancy: every coded concept, every text. The AI output of
a model that is not validated must claim nothing (inference.serving.outputs): no malignant or benign code or word,
no probability of cancer, no BI-RADS assessment."""

from __future__ import annotations

import re

from pydicom.dataset import Dataset

# Malignant, Benign (SCT) and Probability of cancer (DCM 111047).
FORBIDDEN_CODES = {("SCT", "21594007"), ("SCT", "30807003"), ("DCM", "111047")}
CLAIM = re.compile(r"malignan|benign|cancer|carcinoma|neoplasm|bi-?rads|assessment category", re.IGNORECASE)
_TEXT_VRS = {"LO", "LT", "ST", "UT", "SH", "CS", "PN", "UC"}


def malignancy_claims(ds: Dataset, *, path: str = "") -> list[str]:
    """Each place in the dataset (nested sequences included) where a code or a text claims malignancy."""
    found = []
    if "CodeValue" in ds and "CodingSchemeDesignator" in ds:
        code = (str(ds.CodingSchemeDesignator), str(ds.CodeValue))
        meaning = str(ds.get("CodeMeaning", ""))
        if code in FORBIDDEN_CODES or CLAIM.search(meaning):
            found.append(f"{path or 'root'}: code {code} {meaning!r}")
    for element in ds:
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                found += malignancy_claims(item, path=f"{path}/{element.keyword}[{index}]")
        elif element.VR in _TEXT_VRS and element.keyword != "CodeMeaning":
            values = element.value if isinstance(element.value, (list, tuple)) else [element.value]
            for value in values:
                if value is not None and CLAIM.search(str(value)):
                    found.append(f"{path}/{element.keyword}: {str(value)[:120]!r}")
    return found


def json_malignancy_claims(value, *, path: str = "") -> list[str]:
    """Values of an API answer that label something malignant or benign (keys named label/result/call, or any
    string value that is exactly such a label)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += json_malignancy_claims(item, path=f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += json_malignancy_claims(item, path=f"{path}[{index}]")
    elif isinstance(value, str) and value.strip().lower() in ("malignant", "benign", "malignancy", "cancer"):
        found.append(f"{path}: {value!r}")
    return found
