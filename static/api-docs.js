// Starts the vendored Swagger UI on /docs: a file, not an inline script, so the CSP holds.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var target = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: target.dataset.specUrl, domNode: target, deepLinking: false });
});
