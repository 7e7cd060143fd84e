// The error summary of a refused form (templates/_error_summary.html, the GOV.UK pattern): focus moves to it as the
// page opens, so that a screen reader reads it first; each of its links moves focus to its field and shows the
// field's label. A file of its own: the Content-Security-Policy allows no inline script.
(function () {
  const summary = document.querySelector(".error-summary");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#']");
    if (!link) return;
    const field = document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
    if (!field) return;
    event.preventDefault();
    const legend = field.closest("fieldset")?.querySelector("legend");
    const label = field.id ? document.querySelector(`label[for="${CSS.escape(field.id)}"]`) : null;
    (legend || label || field).scrollIntoView({ block: "start" });
    field.focus({ preventScroll: true });
  });
})();
