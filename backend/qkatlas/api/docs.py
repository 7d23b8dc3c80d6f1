"""/docs: Swagger UI from the swagger-ui-bundle package (no CDN), started by a script file rather
than FastAPI's inline one, so the Content-Security-Policy allows no inline script."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>qkatlas API</title>
  <link rel="stylesheet" href="/docs-static/swagger-ui.css">
  <link rel="icon" href="/docs-static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui" data-openapi="{openapi}"></div>
  <script src="/docs-static/swagger-ui-bundle.js"></script>
  <script src="/docs/start.js"></script>
</body>
</html>
"""

START = """const el = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: el.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""


def mount_offline_docs(app: FastAPI) -> None:
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return HTMLResponse(PAGE.replace("{openapi}", app.openapi_url))

    @app.get("/docs/start.js", include_in_schema=False)
    def docs_start():
        return Response(START, media_type="text/javascript")
