// /api/docs/ (templates/api/docs.html): Swagger UI, from the files drf-spectacular-sidecar ships, on the platform's
// OpenAPI schema. No inline script (strict Content-Security-Policy); no validator badge (it would call an outside
// service); "Try it out" requests carry the page's CSRF token, as the session's forms do.
(function () {
  const root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    domNode: root,
    deepLinking: true,
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
})();
