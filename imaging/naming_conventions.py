"""Public datasets' naming conventions: identifiers that name the woman, the exam and the view in text.

CBIS-DDSM names every view in its PatientID and in its folder names ('Mass-Test_P_00173_RIGHT_CC'): the woman is
'P_00173', the exam 'Mass-Test_P_00173' (her mass images of the test split) and the view right CC. It also gives
every view its own StudyInstanceUID, so that name is the only thing that says which views form one exam.

The dataset reader (inference.training.datasets.cbis_ddsm) checks its folders against this rule, and clinical
ingestion asks it which woman a PatientID stands for and which exam a received view belongs to; neither holds the
pattern itself. A clinical identifier follows no convention: view_named_by() answers None for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NamedView:
    """What an identifier says under a dataset's naming convention."""

    convention: str  # the dataset, e.g. 'CBIS-DDSM'
    woman: str  # 'P_00173'
    exam: str  # 'Mass-Test_P_00173': one woman's views that belong together
    laterality: str  # 'L' | 'R'
    view: str  # 'CC' | 'MLO'

    @property
    def exam_key(self) -> str:
        """The exam as one case-insensitive key, unique across conventions."""
        return f"{self.convention}:{self.exam.upper()}"


# 'Mass-Training_P_00001_LEFT_CC', also as the start of a crop folder ('..._LEFT_CC_1') or a file name.
_CBIS_DDSM = re.compile(
    r"^(?P<exam>(?:Mass|Calc)-(?:Training|Test)_(?P<woman>P_\d+))_(?P<side>LEFT|RIGHT)_(?P<view>CC|MLO)(?![A-Z0-9])",
    re.IGNORECASE,
)


def view_named_by(identifier: str) -> NamedView | None:
    """The woman, exam and view a dataset identifier (PatientID, folder or file name) names, or None when it follows
    no known convention (a clinical identifier)."""
    match = _CBIS_DDSM.match((identifier or "").strip())
    if match is None:
        return None
    return NamedView(
        convention="CBIS-DDSM",
        woman=match["woman"].upper(),
        exam=match["exam"],
        laterality=match["side"].upper()[0],
        view=match["view"].upper(),
    )
