"""The REST API and the static front end, served by one FastAPI app (create_app)."""
