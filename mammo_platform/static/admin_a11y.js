// Django's admin, WCAG 2.2 AA (checked by axe-core in tests/test_browser_security.py): the magnifier icons that
// SelectFilter2.js draws beside the filter boxes carry an aria-label without a role, which ARIA does not allow on a
// plain span; as images they keep their label. Watched, since SelectFilter2 draws them after the page loads.
(function () {
  const fix = () => {
    document.querySelectorAll(".help-tooltip[aria-label]:not([role])").forEach((icon) => {
      icon.setAttribute("role", "img");
    });
  };
  fix();
  new MutationObserver(fix).observe(document.documentElement, { childList: true, subtree: true });
})();
