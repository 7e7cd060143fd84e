"""Roles and the permission matrix: the one place that says who may do what.

Pages (decorators in accounts.permissions), the API (DRF permission classes there too) and the admin all ask
`role_can(user, capability)`. The README's role matrix is generated from MATRIX's contents.
"""

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    TECHNOLOGIST = "technologist", "Technologist"
    RADIOLOGIST = "radiologist", "Radiologist"
    LEAD_RADIOLOGIST = "lead_radiologist", "Lead radiologist"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"


class Capability(StrEnum):
    STUDY_UPLOAD = "study.upload"  # create studies, upload images, retry failed analyses
    STUDY_VIEW = "study.view"  # see studies, their images and processing status
    PREDICTION_VIEW = "prediction.view"  # see AI probabilities, labels and heatmaps
    STUDY_READ = "study.read"  # claim and give first or second reads, see reads once allowed
    READ_ASSIGN = "read.assign"  # assign and reassign reads to radiologists
    ARBITRATE = "read.arbitrate"  # decide discordant studies
    OUTCOME_RECORD = "outcome.record"  # record biopsy / follow-up ground truth
    PERFORMANCE_VIEW = "performance.view"
    AUDIT_VIEW = "audit.view"
    MODEL_VIEW = "model.view"  # the AI inventory: every model, its status, validation and history; its exports
    MODEL_MANAGE = "model.manage"  # import models and change their status
    MODEL_MONITOR = "model.monitor"  # the models' monitoring: view it, run it on demand, edit the stop rules
    MODEL_RESUME = "model.resume"  # resume a suspended model (a clinical decision: lead radiologists only)
    # write a model's local acceptance protocol, compute its report, sign off a passing one (which accepts the model)
    MODEL_ACCEPT = "model.accept"
    OPERATIONS_VIEW = "operations.view"  # the platform's queues, failed and overdue work and results; retry them
    USER_MANAGE = "user.manage"
    APPOINTMENT_VIEW = "appointment.view"  # the day's clinic list, appointments and their status history
    APPOINTMENT_SCHEDULE = "appointment.schedule"  # book and cancel appointments
    APPOINTMENT_ATTEND = "appointment.attend"  # check a woman in, record what the mammographer sees, the outcome
    IMAGES_MATCH = "images.match"  # see held images (no appointment matched) and attach them to one, or release them
    RESULT_CONFIRM = "result.confirm"  # confirm a final study's screening result, which makes the woman's letter
    LETTER_VIEW = "letter.view"  # the result letters: list, download, print many at once, make one again
    LETTER_TEMPLATE_EDIT = "letter.template_edit"  # the site's wording of each result letter
    READING_STATISTICS = "reading.statistics"  # reading sessions; one's own reading figures and the site totals
    READING_STATISTICS_ALL = "reading.statistics_all"  # every reader's reading figures


_RADIOLOGIST = {
    Capability.STUDY_VIEW,
    Capability.PREDICTION_VIEW,
    Capability.STUDY_UPLOAD,
    Capability.STUDY_READ,
    Capability.READING_STATISTICS,
}

MATRIX: dict[str, frozenset[Capability]] = {
    Role.TECHNOLOGIST: frozenset(
        {
            Capability.STUDY_UPLOAD,
            Capability.STUDY_VIEW,
            Capability.APPOINTMENT_VIEW,
            Capability.APPOINTMENT_SCHEDULE,
            Capability.APPOINTMENT_ATTEND,
            Capability.IMAGES_MATCH,
            Capability.LETTER_VIEW,
        }
    ),
    Role.RADIOLOGIST: frozenset(_RADIOLOGIST),
    # Leads run the service: they book and cancel, and match held images; the mammographer (technologist) attends.
    Role.LEAD_RADIOLOGIST: frozenset(
        _RADIOLOGIST
        | {
            Capability.READ_ASSIGN,
            Capability.ARBITRATE,
            Capability.OUTCOME_RECORD,
            Capability.PERFORMANCE_VIEW,
            Capability.MODEL_VIEW,
            Capability.READING_STATISTICS_ALL,
            Capability.MODEL_MONITOR,
            Capability.MODEL_RESUME,
            Capability.MODEL_ACCEPT,
        }
        | {Capability.APPOINTMENT_VIEW, Capability.APPOINTMENT_SCHEDULE, Capability.IMAGES_MATCH}
        # The episode's end: the lead confirms the result and owns the letters' wording; the clinic prints them.
        | {Capability.RESULT_CONFIRM, Capability.LETTER_VIEW, Capability.LETTER_TEMPLATE_EDIT}
    ),
    Role.AUDITOR: frozenset({Capability.AUDIT_VIEW, Capability.PERFORMANCE_VIEW, Capability.READING_STATISTICS_ALL}),
    Role.ADMIN: frozenset(
        {
            Capability.MODEL_VIEW,
            Capability.MODEL_MANAGE,
            Capability.MODEL_MONITOR,
            Capability.OPERATIONS_VIEW,
            Capability.USER_MANAGE,
        }
    ),
}


def role_can(user, capability: Capability) -> bool:
    """True when an active, signed-in user's role grants the capability."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return capability in MATRIX.get(user.role, frozenset())


def matrix_markdown() -> str:
    """The matrix as a Markdown table (the README's copy is checked against it by a test)."""
    roles = list(Role)
    lines = ["| capability | " + " | ".join(r.label for r in roles) + " |", "|---|" + "---|" * len(roles)]
    for capability in Capability:
        marks = ["yes" if capability in MATRIX[r] else "–" for r in roles]
        lines.append(f"| `{capability.value}` | " + " | ".join(marks) + " |")
    return "\n".join(lines)
