// /api/docs/ (templates/api/docs.html): Swagger UI, from the files drf-spectacular-sidecar ships, on the platform's
// OpenAPI schema. No inline script (strict Content-Security-Policy); no validator badge (it would call an outside
// service); "Try it out" requests carry the page's CSRF token, as the session's forms do.
(function () {
  const root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    domNode: root,
    // No deep links: Swagger UI draws each one as a link inside the operation's button (axe-core nested-interactive,
    // and a 23 px target), which keyboard and screen reader users cannot reach as such.
    deepLinking: false,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: (request) => {
      request.headers["X-CSRFToken"] = root.dataset.csrfToken;
      return request;
    },
    onComplete: () => {
      root.dataset.state = "ready";
    },
  });
  // What Swagger UI draws as an operation opens lacks names a screen reader needs: the parameters' lists get their
  // parameter's name, and scrolling examples can take the keyboard's focus (WCAG 2.2 AA, checked by axe-core).
  const label = () => {
    root.querySelectorAll("tr[data-param-name] select:not([aria-label])").forEach((select) => {
      select.setAttribute("aria-label", select.closest("tr").dataset.paramName);
    });
    root.querySelectorAll("pre.example:not([tabindex]), pre.microlight:not([tabindex])").forEach((pre) => {
      pre.setAttribute("tabindex", "0");
    });
  };
  new MutationObserver(label).observe(root, { childList: true, subtree: true });
})();
