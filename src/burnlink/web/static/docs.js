// Starts Swagger UI on /docs; a file of its own so the page needs no inline script.
"use strict";

// Swagger UI puts the API's title in an <h1> and each tag in an <h3>; a heading in between
// keeps the outline whole for screen readers (axe's heading-order), and every text area
// gets a name (axe's label).
const Accessibility = () => ({
  wrapComponents: {
    operations: (Original, system) => (props) =>
      system.React.createElement(
        "section",
        { "aria-labelledby": "docs-operations" },
        system.React.createElement("h2", { id: "docs-operations", className: "docs-operations" }, "Operations"),
        system.React.createElement(Original, props),
      ),
    // The request body's text area comes with an empty title and no label.
    TextArea: (Original, system) => (props) =>
      system.React.createElement(Original, {
        ...props,
        "aria-label": props["aria-label"] || props.title || "Request body",
      }),
  },
});

window.SwaggerUIBundle({
  // Found relative to this script, so a server under a path prefix works.
  url: new URL("../openapi.json", document.currentScript.src).href,
  dom_id: "#swagger-ui",
  plugins: [Accessibility],
  // No badge from the public validator: the page loads nothing from other hosts.
  validatorUrl: null,
});
