"""Who sees the AI, where: the one rule, for every page, API, file URL and export. A patient-safety rule: a read
given without the AI must stay unaided, and a reveal mode must hold.

`ai_access(user=, study=, read=None)` answers for a person and a study (and, on a read's own page, that read):

- HIDDEN: the AI is not for this person here, with the reason:
  - their role does not see AI results (technologists, auditors, administrators);
  - the read they give (or hold) is given without the AI (READERS_SEE_AI was off when it was claimed);
  - they could still claim a read of this study while reads are given unaided (READERS_SEE_AI off, or AI_REVEAL
    after_first_impression): a look at the AI before claiming would make that read aided;
- LOCKED: the AI exists for their read but waits for their first impression (AI_REVEAL after_first_impression);
  the page holds no AI result at all until then;
  - the malignancy model is suspended (no model active, one suspended: ai_suspended), for everyone;
- SHOWN: they may see it (with AI_REVEAL on_request the page still opens with the AI off: that is the page's
  switch, not this rule).

The worklist's AI sort follows the same rule (cases.reading.worklist.queue_ai_access, on reads_are_unaided): never
in the queues of studies the user may still read, or is reading, unaided.

The answers are memoised on the study instance for one request (a study's images share them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from accounts.roles import Capability, role_can
from cases.models import Read, Study


class Visibility(StrEnum):
    HIDDEN = "hidden"
    LOCKED = "locked"
    SHOWN = "shown"


@dataclass(frozen=True)
class AiAccess:
    visibility: Visibility
    reason: str = ""  # why it is hidden or locked, for people

    @property
    def shown(self) -> bool:
        return self.visibility == Visibility.SHOWN

    @property
    def locked(self) -> bool:
        return self.visibility == Visibility.LOCKED


ROLE = AiAccess(Visibility.HIDDEN, "Your role does not see AI results.")
UNAIDED_READ = AiAccess(Visibility.HIDDEN, "Your read of this study is given without the AI.")
COULD_READ_UNAIDED = AiAccess(
    Visibility.HIDDEN, "You may still read this study, and reads are given without the AI: it is not shown before."
)
FIRST_IMPRESSION = AiAccess(Visibility.LOCKED, "The AI is shown once you have recorded your first impression.")
SHOWN = AiAccess(Visibility.SHOWN)
SUSPENDED = AiAccess(
    Visibility.HIDDEN, "The AI model is suspended (a stop rule or a person stopped it): reads are given without it."
)


def ai_suspended() -> bool:
    """Whether the malignancy AI is suspended: no malignancy model is active and one is suspended (by a stop rule or
    a person, inference.monitoring). Then no one sees AI results and new reads are given without the AI until a lead
    radiologist resumes the model. One query."""
    from inference.models import ModelKind, ModelStatus, ModelVersion

    states = set(
        ModelVersion.objects.filter(
            kind=ModelKind.MALIGNANCY, status__in=(ModelStatus.ACTIVE, ModelStatus.SUSPENDED)
        ).values_list("status", flat=True)
    )
    return ModelStatus.SUSPENDED in states and ModelStatus.ACTIVE not in states


def reads_are_unaided() -> bool:
    """Whether a reader meets the AI only after reading (READERS_SEE_AI off, or AI_REVEAL after_first_impression)."""
    return not settings.READERS_SEE_AI or settings.AI_REVEAL == "after_first_impression"


def ai_access(*, user, study: Study, read: Read | None = None) -> AiAccess:
    """The AI of `study` for `user`; on a read's own page, `read` (their read) decides."""
    if not role_can(user, Capability.PREDICTION_VIEW):
        return ROLE
    if "_ai_suspended" not in study.__dict__:
        study.__dict__["_ai_suspended"] = ai_suspended()
    if study.__dict__["_ai_suspended"]:
        return SUSPENDED
    if read is not None and read.reader_id == user.pk:
        return _for_own_read(read)
    memo = study.__dict__.setdefault("_ai_access", {})
    if user.pk not in memo:
        memo[user.pk] = _for_study(user, study)
    return memo[user.pk]


def _for_own_read(read: Read) -> AiAccess:
    if not read.ai_available:
        return UNAIDED_READ
    if read.kind in Read.DOUBLE and not read.is_submitted and read.ai_locked:
        return FIRST_IMPRESSION
    return SHOWN


def _for_study(user, study: Study) -> AiAccess:
    """Outside a read's page: the user's unfinished read of the study decides; else whether they could still read
    it unaided. One query per study and user."""
    if not role_can(user, Capability.STUDY_READ):
        return SHOWN
    reads = list(
        Read.objects.filter(study_id=study.pk, kind__in=Read.DOUBLE).only(
            "reader_id", "kind", "status", "ai_available", "ai_reveal", "first_impression_at"
        )
    )
    mine = [r for r in reads if r.reader_id == user.pk]
    unfinished = [r for r in mine if not r.is_submitted]
    if unfinished:
        access = _for_own_read(unfinished[0])
        # Outside the read's page a locked AI is simply not shown.
        return AiAccess(Visibility.HIDDEN, access.reason) if access.locked else access
    # A held study is not readable yet, but will be once matched: its AI is kept from possible readers as well.
    may_be_read = study.status in (*Study.READABLE, Study.Status.HELD)
    could_claim = may_be_read and not mine and len(reads) < len(Read.DOUBLE)
    if could_claim and reads_are_unaided():
        return COULD_READ_UNAIDED
    return SHOWN
