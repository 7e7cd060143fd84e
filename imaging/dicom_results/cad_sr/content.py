"""SR content items (PS3.3 C.17.3 SR Document Content Module) as pydicom Datasets.

Each function returns one content item; children are passed in already built, each with its relationship to the
parent. By-reference relationships (PS3.3 C.17.3.2.5) carry only the Referenced Content Item Identifier: the
1-based positions of the target on the path from the root (the root itself is 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydicom.dataset import Dataset

from imaging.dicom_results.cad_sr.codes import Code

CONTAINS = "CONTAINS"
HAS_PROPERTIES = "HAS PROPERTIES"
HAS_CONCEPT_MOD = "HAS CONCEPT MOD"
HAS_OBS_CONTEXT = "HAS OBS CONTEXT"
HAS_ACQ_CONTEXT = "HAS ACQ CONTEXT"
INFERRED_FROM = "INFERRED FROM"
SELECTED_FROM = "SELECTED FROM"


def code_sequence_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def decimal_string(value: float) -> str:
    """A DS value (at most 16 characters) with up to 8 significant digits."""
    text = f"{value:.8g}"
    if len(text) > 16:
        raise ValueError(f"{value!r} does not fit a DS value")
    return text


def _item(relationship: str | None, value_type: str, concept: Code, children: Iterable[Dataset]) -> Dataset:
    item = Dataset()
    if relationship is not None:
        item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [code_sequence_item(concept)]
    children = list(children)
    if children:
        item.ContentSequence = children
    return item


def container(relationship: str | None, concept: Code, children: Iterable[Dataset] = ()) -> Dataset:
    item = _item(relationship, "CONTAINER", concept, children)
    item.ContinuityOfContent = "SEPARATE"
    return item


def code(relationship: str, concept: Code, value: Code, children: Iterable[Dataset] = ()) -> Dataset:
    item = _item(relationship, "CODE", concept, children)
    item.ConceptCodeSequence = [code_sequence_item(value)]
    return item


def text(relationship: str, concept: Code, value: str, children: Iterable[Dataset] = ()) -> Dataset:
    item = _item(relationship, "TEXT", concept, children)
    item.TextValue = value
    return item


def num(relationship: str, concept: Code, value: float, unit: Code, children: Iterable[Dataset] = ()) -> Dataset:
    measured = Dataset()
    measured.NumericValue = decimal_string(value)
    measured.MeasurementUnitsCodeSequence = [code_sequence_item(unit)]
    item = _item(relationship, "NUM", concept, children)
    item.MeasuredValueSequence = [measured]
    return item


def date(relationship: str, concept: Code, value: str) -> Dataset:
    item = _item(relationship, "DATE", concept, ())
    item.Date = value
    return item


def time(relationship: str, concept: Code, value: str) -> Dataset:
    item = _item(relationship, "TIME", concept, ())
    item.Time = value
    return item


def uidref(relationship: str, concept: Code, value: str) -> Dataset:
    item = _item(relationship, "UIDREF", concept, ())
    item.UID = value
    return item


def image(relationship: str, *, sop_class_uid: str, sop_instance_uid: str, children: Iterable[Dataset] = ()) -> Dataset:
    """An IMAGE item without a concept name (TID 4020 row 1 names none)."""
    reference = Dataset()
    reference.ReferencedSOPClassUID = sop_class_uid
    reference.ReferencedSOPInstanceUID = sop_instance_uid
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = "IMAGE"
    item.ReferencedSOPSequence = [reference]
    children = list(children)
    if children:
        item.ContentSequence = children
    return item


def point(relationship: str, concept: Code, *, column: float, row: float, children: Iterable[Dataset]) -> Dataset:
    """An SCOORD POINT in image pixel space: (column, row), 0.0 at the top left corner of the top left pixel."""
    item = _item(relationship, "SCOORD", concept, children)
    item.GraphicType = "POINT"
    item.GraphicData = [float(column), float(row)]
    return item


def by_reference(relationship: str, path: Sequence[int]) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ReferencedContentItemIdentifier = [int(position) for position in path]
    return item
