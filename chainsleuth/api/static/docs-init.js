// Starts Swagger UI on the API's own schema (a file, so the page needs no inline script).
window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui" });
