"""Run David Clunie's dciodvfy (Debian dicom3tools) on a DICOM file and parse what it says.

dciodvfy prints the IOD it recognised, then one line per finding starting with 'Error - ' or 'Warning - '; its
exit status does not tell errors from warnings, so the lines are what counts.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

DCIODVFY = shutil.which("dciodvfy")


@dataclass
class Verdict:
    iod: str  # the IOD dciodvfy chose, e.g. 'ComprehensiveSR', 'SCImage'
    errors: list[str]
    warnings: list[str]
    output: str


def require_dciodvfy() -> str:
    if DCIODVFY is None:
        pytest.skip("dciodvfy is not installed (Debian package dicom3tools; test.sh installs it)")
    return DCIODVFY


def dciodvfy(path: Path) -> Verdict:
    result = subprocess.run([require_dciodvfy(), str(path)], capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    warnings = [line for line in lines if line.startswith("Warning")]
    others = [line for line in lines if not line.startswith(("Error", "Warning"))]
    return Verdict(iod=others[0] if others else "", errors=errors, warnings=warnings, output=output)
