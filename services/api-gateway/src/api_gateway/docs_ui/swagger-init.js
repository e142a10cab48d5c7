// Starts Swagger UI on the merged API document; a file of its own so the page's CSP needs no inline script.
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: document.getElementById('swagger-ui').dataset.openapiUrl,
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
