"""Mammography CAD SR (SOP Class 1.2.840.10008.5.1.4.1.1.88.50, root template TID 4000), built with pydicom.

The object mammography reading workstations read CAD marks from. Django-free: the worker and the tests use it
bare. docs/dicom-cad-sr.md is its conformance statement (templates, content items, codes, and why).
"""

from imaging.dicom_results.cad_sr.document import MAMMOGRAPHY_CAD_SR, mammography_cad_sr
from imaging.dicom_results.cad_sr.model import BreastComposition, CadAlgorithm, CadImage

__all__ = ["MAMMOGRAPHY_CAD_SR", "BreastComposition", "CadAlgorithm", "CadImage", "mammography_cad_sr"]
