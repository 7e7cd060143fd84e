"""The auditor's pages: the audit trail (browse, filter, CSV export).

They show ids and names only and never link to studies or image files (auditors see no patient images).
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.permissions import capability_required
from accounts.roles import Capability, Role
from audit.export import csv_lines
from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from audit.selectors import audit_event_list
from audit.services import audit_record

PAGE_SIZE = 50
DETAILS_SHOWN = 160  # characters of the compact details before the rest folds away


def _compact(details: dict) -> str:
    return json.dumps(details, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def _role_label(role: str) -> str:
    return Role(role).label if role in Role.values else role


@capability_required(Capability.AUDIT_VIEW)
@require_GET
def event_list(request):
    form = AuditFilterForm(request.GET or None)
    form.is_valid()
    filters = form.filters()
    page = Paginator(audit_event_list(user=request.user, filters=filters), PAGE_SIZE).get_page(request.GET.get("page"))
    actors = get_user_model().objects.in_bulk({e.actor_id for e in page if e.actor_id is not None})
    rows = []
    for event in page:
        actor = actors.get(event.actor_id)
        details = _compact(event.details)
        rows.append(
            {
                "event": event,
                "full_name": actor.get_full_name() if actor else "",
                "role": _role_label(event.actor_role),
                "details": details,
                "details_short": details if len(details) <= DETAILS_SHOWN else details[:DETAILS_SHOWN] + "…",
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/event_list.html",
        {"form": form, "page": page, "rows": rows, "query": query.urlencode(), "filtered": bool(filters.as_details())},
    )


@capability_required(Capability.AUDIT_VIEW)
@require_GET
def export(request):
    form = AuditFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return HttpResponseBadRequest("Invalid filters: " + "; ".join(e for errs in form.errors.values() for e in errs))
    filters = form.filters()
    # Fix the rows before recording the export: the export's own event (and any later one) is not in it, and the
    # row count written to the trail is exactly what the file holds.
    last_id = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    events = audit_event_list(user=request.user, filters=filters).filter(id__lte=last_id)
    rows = events.count()
    audit_record(action="audit.exported", actor=request.user, details={"filters": filters.as_details(), "rows": rows})
    response = StreamingHttpResponse(csv_lines(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
