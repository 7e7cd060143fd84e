"""The audit action registry (audit/actions.py): every name the code records is in it, with its meaning;
audit_record() refuses any other; docs/audit.md lists exactly the registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from audit.actions import ACTIONS, UnknownAuditAction, actions_markdown
from audit.models import AuditEvent
from audit.services import audit_record

REPO = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^[a-z]+(?:\.[a-z_]+)+$")
NOT_CODE = {".venv", "tests", "migrations", "var", "node_modules", "__pycache__"}


def names_in_the_code() -> dict[str, list[str]]:
    """Dotted names given as `action=` to any call (audit_record, AuditEvent, a filter on the trail), and dotted
    names passed to any function whose name says audit (helpers such as _audit_read("read.submitted", ...))."""
    found: dict[str, list[str]] = {}
    for path in sorted(REPO.rglob("*.py")):
        if NOT_CODE & set(path.relative_to(REPO).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            function = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            values = [k.value for k in node.keywords if k.arg == "action"]
            if "audit" in function.lower():
                values += node.args
            for value in values:
                for constant in ast.walk(value):
                    if isinstance(constant, ast.Constant) and NAME.match(str(constant.value)):
                        where = f"{path.relative_to(REPO)}:{node.lineno}"
                        found.setdefault(constant.value, []).append(where)
    return found


def test_every_action_the_code_records_is_registered():
    found = names_in_the_code()
    assert len(found) >= 40  # the scan sees the code (about 45 names)
    unregistered = {name: where for name, where in found.items() if name not in ACTIONS}
    assert unregistered == {}, "add these to audit/actions.py"


def test_every_registered_action_is_a_name_with_a_meaning_that_fits_the_column():
    width = AuditEvent._meta.get_field("action").max_length
    for name, meaning in ACTIONS.items():
        assert NAME.match(name) and len(name) <= width, name
        assert meaning.strip().endswith(".") and len(meaning) > 15, name


def test_docs_list_exactly_the_registered_actions():
    text = (REPO / "docs" / "audit.md").read_text()
    block = text.split("<!-- audit-actions:start -->")[1].split("<!-- audit-actions:end -->")[0]
    assert block.strip() == actions_markdown().strip(), "paste audit.actions.actions_markdown() into docs/audit.md"


@pytest.mark.django_db
def test_audit_record_refuses_an_unknown_action():
    with pytest.raises(UnknownAuditAction, match="audit/actions.py"):
        audit_record(action="study.upload")
    assert not AuditEvent.objects.exists()
