"""The API's routers, one per resource: system (health, catalog, vendor files), atlases, heads, items, live."""
