// Starts Swagger UI on /docs; a file of its own so the page needs no inline script.
window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
