// Saves the read form (#read-form[data-draft-url]) as a server-side draft while the reader works, so that leaving
// the page loses nothing; the page restores the draft when the read is reopened (cases.reading.views.read_page).
// Debounced: one save a moment after the last change. Marks are set by the viewer without input events, so a
// pointer or key release anywhere also schedules a check; nothing is sent when the form has not changed.
(function () {
  const form = document.getElementById("read-form");
  if (!form || !form.dataset.draftUrl) return;
  const url = form.dataset.draftUrl;
  const status = document.querySelector("[data-draft-status]");
  const DELAY_MS = 800;
  let timer = null;
  let submitting = false;

  function serialise() {
    return new URLSearchParams(new FormData(form)).toString();
  }
  let saved = serialise(); // what the page opened with is what the server holds

  function say(text) {
    if (status) status.textContent = text;
  }

  async function save() {
    timer = null;
    if (submitting) return;
    const body = serialise();
    if (body === saved) return;
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body,
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        say(`Draft not saved: ${data.detail || response.status}`);
        return;
      }
      saved = body;
      const data = await response.json();
      // Written by the server in the site's time zone on its 24-hour clock, as every other time on the site (the
      // browser's locale and zone may be neither).
      say(`Draft saved ${data.saved_at_text}`);
    } catch (err) {
      say("Draft not saved: no connection. It is saved again at your next change.");
    }
  }

  function schedule() {
    if (submitting) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(save, DELAY_MS);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  document.addEventListener("pointerup", schedule);
  document.addEventListener("keyup", schedule);
  form.addEventListener("submit", () => {
    submitting = true;
    if (timer) clearTimeout(timer);
  });
  // Leaving the page with an unsaved change: send it on the way out (cookies and the form's CSRF token go with it).
  window.addEventListener("pagehide", () => {
    if (submitting || serialise() === saved || !navigator.sendBeacon) return;
    navigator.sendBeacon(url, new FormData(form));
  });
})();
