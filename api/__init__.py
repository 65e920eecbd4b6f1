"""The codesign service: FastAPI app, database, job runner and auth (depends on ``search``)."""
