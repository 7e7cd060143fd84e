"""Times as people read them: in the site's time zone (settings.TIME_ZONE) on a 24-hour clock, the formats of
mammo_platform/formats. For text made outside a template (messages, JSON for the page's scripts), so that a time
written by the server or drawn by JavaScript reads like every other time on the site."""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone

TIME_WITH_SECONDS = "H:i:s"


def local_datetime_text(value: datetime) -> str:
    """'2026-12-06 18:10' in the site's time zone."""
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def local_time_text(value: datetime, *, seconds: bool = False) -> str:
    """'18:10' (or '18:10:04') in the site's time zone."""
    return formats.date_format(timezone.localtime(value), TIME_WITH_SECONDS if seconds else "TIME_FORMAT")
