"""Container health check for the web role: the login page must answer 200 on port 8000.

Standard library only (the slim image has no curl) and no Django import, so it stays cheap. The request carries
a Host header taken from ALLOWED_HOSTS (otherwise Django answers 400) and X-Forwarded-Proto: https, as the TLS
proxy sends it (otherwise, with BEHIND_TLS_PROXY, Django answers with a redirect to https). Redirects are not
followed: anything but 200 is reported as unhealthy with the status seen.
"""

import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8000/accounts/login/")


def _host() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip()
        if entry and entry != "*":
            return entry.lstrip(".")  # ".example.org" also allows "example.org"
    return "localhost"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main() -> int:
    request = urllib.request.Request(URL, headers={"Host": _host(), "X-Forwarded-Proto": "https"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "10"))) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {URL}: {exc}")
        return 1
    if status != 200:
        print(f"unhealthy: {URL} answered {status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
