"""The site's one way of writing dates and times (LANGUAGE_CODE en-gb): ISO dates and 24-hour times, in the site's
time zone (TIME_ZONE, named once in every page's footer). Django's own en_GB formats would write "6 Dec 2026,
6:10 p.m." wherever a template prints a date or time without a format of its own."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
