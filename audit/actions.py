"""Every action the audit trail records: its name and what a row of it means.

audit_record() refuses a name that is not here, so the auditor's list of actions (the filter on /audit/, the table
in docs/audit.md) is complete and means what it says. To record something new: add its name here with one line
of meaning, and paste actions_markdown() into docs/audit.md (tests/test_audit_actions.py checks the table, and that
every name the code passes to audit_record is here). Names are '<subject>.<what happened>', at most 40 characters (the
column's width); a name once recorded is never renamed or removed, since old rows keep it.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    # Sign-in, accounts and tokens (accounts announces them; audit/receivers.py records them)
    "auth.login": "A person signed in.",
    "auth.logout": "A person signed out.",
    "auth.login_failed": "A sign-in failed: the name typed (never the password), also when refused during a lockout.",
    "auth.locked_out": "Too many failed sign-ins locked a user name at an address, or an address.",
    "auth.lockout_lifted": "An administrator lifted a sign-in lockout.",
    "auth.token_issued": "An API token was issued to a person: its key (the public part) and expiry.",
    "auth.token_revoked": "An API token was revoked: by whom and why.",
    "user.created": "A user account was created, with its role.",
    "user.changed": "A user's role, active flag or staff flag changed: from what to what.",
    "user.password_changed": "A user's password was changed.",
    # Images in and out
    "images.uploaded": "Images were added to a study (web form, API, C-STORE, STOW-RS), and which files were not.",
    "dicom.association": "A DICOM association (or a spool recovery) ended: who sent from where, what was stored or "
    "refused.",
    "dicomweb.stored": "A STOW-RS request ended: how many instances were stored and which were refused, why.",
    "study.images_opened": "A person opened a study's images (once per person, study and session window).",
    "image.downloaded": "A person downloaded an original image (the image page or DICOMweb WADO-RS).",
    "storage.reconciled": "reconcile_storage removed stored files no row refers to, and listed files rows miss.",
    # Analysis
    "prediction.created": "The AI's result for an image: model version and file hash, input hash, probability, "
    "threshold, label, timings.",
    "job.failed": "An image's analysis failed for good: the message shown and the detail.",
    "job.retried": "A person asked again for a failed analysis.",
    "model.registered": "A model version was registered: name, backbone, file SHA-256, threshold.",
    "model.activated": "A model version became the one that analyses new images (before model lifecycles).",
    "model.status_changed": "A model's lifecycle status changed (imported, shadow, accepted, active...), with why.",
    "model.imported": "A model was imported: its file's SHA-256, manifest and conformance check passed.",
    "model.import_refused": "A model import was refused by its conformance check, with the reason.",
    "model.inventory_exported": "The model inventory was exported (CSV or JSON) for the governance group.",
    "model.monitoring_requested": "A person asked for a model's monitoring to be computed now.",
    "model.monitoring_computed": "A model's monitoring was computed for a range of days (beat or on demand).",
    "model.monitoring_exported": "A model's monitoring series was exported (CSV or JSON) for the governance group.",
    "model.stop_rule_changed": "A stop rule was created, changed or disabled: its type, scope and limits.",
    "model.stop_rule_tripped": "A stop rule tripped for a model on a day: the figures, and whether it was suspended.",
    "model.resumed": "A lead radiologist resumed a suspended model, with the reason.",
    "model.acceptance_protocol_locked": "A lead wrote a model's local acceptance protocol; it is locked as saved.",
    "model.acceptance_computed": "A model's acceptance report was computed from the protocol's period: pass/fail.",
    "model.acceptance_signed_off": "A lead signed off a passing acceptance report, which accepts the model here.",
    "model.acceptance_exported": "An acceptance report was exported (CSV or JSON).",
    # Studies and reading
    "study.status_changed": "A study moved from one status to another.",
    "read.claimed": "A reader claimed a study's first or second read.",
    "read.assigned": "A lead radiologist assigned a read to a reader.",
    "read.reassigned": "A lead radiologist gave a read in progress to another reader.",
    "ai.density_estimated": "The active density model estimated a study's breast density (or recorded why not).",
    "read.ai_revealed": "A reader first had the AI on screen in their read (once per read).",
    "read.released": "A read in progress was released (removed) and the study went back to the queue.",
    "read.first_impression": "A reader recorded a first impression before the AI was shown.",
    "read.submitted": "A reader submitted a read: BI-RADS, recall, whether the AI was available and first seen.",
    "arbitration.submitted": "A lead radiologist submitted the arbitration of two reads that disagreed.",
    "ai.overridden": "A reader's assessment of a breast disagreed with the AI: the reason written.",
    "read.addendum": "An addendum was added to a submitted read.",
    "outcome.recorded": "A study's outcome (the follow-up truth) was recorded.",
    "reading.session_started": "A reader started a reading session (going from case to case in their queue).",
    "reading.session_ended": "A reader ended their reading session: how long it lasted and the reads given in it.",
    "strategies.requested": "A person asked for the screening-strategies report to be computed again.",
    # DICOM results (CAD SR and the other result objects) and their delivery
    "dicom.result_created": "A DICOM result object was made for a study (its kind, version, SOP Instance UID).",
    "dicom.result_failed": "Making a DICOM result object failed: shown on the study and the operations page.",
    "dicom.result_retried": "A person asked again for a result object whose making failed.",
    "dicom.result_downloaded": "A person downloaded a DICOM result object.",
    "dicom.result_delivered": "A result object reached its destination (PACS).",
    "dicom.result_delivery_attempt_failed": "A delivery of a result object failed; it will be tried again.",
    "dicom.result_delivery_failed": "A delivery of a result object failed for good after its last attempt.",
    "dicom.delivery_retried": "A person asked again for a delivery that failed.",
    # Screening episodes: appointments, the modality's steps, what the mammographer records, held images
    "appointment.scheduled": "A woman's appointment was booked: her patient ID, episode (new, or rebooked), accession "
    "number, time, site and station.",
    "appointment.status_changed": "An appointment's status changed (one immutable status row): from, to, by a person, "
    "the modality's MPPS or arriving images, and why.",
    "appointment.record_changed": "The mammographer's record of an appointment changed: history, a symptom or surgery "
    "added or removed, the images taken.",
    "mpps.received": "A modality reported a Performed Procedure Step (MPPS N-CREATE or N-SET): its status, accession "
    "and appointment, images referenced.",
    "images.held": "Received images matched no appointment and were held for a person to match: why.",
    "images.matched": "A person attached held images to an appointment of the same woman.",
    "images.released": "A person released held images for reading without an appointment: why.",
    # The episode's end: the confirmed result and the woman's letter
    "result.confirmed": "A person confirmed a final study's screening result (as the reads decided it), with the "
    "views to take again and the final reader density.",
    "letter.made": "A result letter was made as PDF: its reference, result, template version, the PDF's SHA-256.",
    "letter.downloaded": "A person downloaded a result letter.",
    "letters.printed": "A person printed result letters (one PDF of many): their references.",
    "letter.template_changed": "A lead saved a new version of the site's wording for a result letter.",
    # Operations and the trail itself
    "outbox.retried": "A person retried a failed asynchronous step from the operations page.",
    "audit.exported": "An auditor exported the audit trail as CSV: the filters and the number of rows.",
}


class UnknownAuditAction(ValueError):
    """audit_record() was asked to record a name that is not in ACTIONS."""


def audit_action_check(action: str) -> None:
    if action not in ACTIONS:
        raise UnknownAuditAction(
            f"{action!r} is not an audit action: add it to audit/actions.py with one line of meaning "
            "(and its row to docs/audit.md)."
        )


def actions_markdown() -> str:
    """The table of actions for docs/audit.md."""
    lines = ["| action | what a row of it means |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in ACTIONS.items()]
    return "\n".join(lines)
