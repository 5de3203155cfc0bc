"""HTTP: ``create_app(settings)`` builds the FastAPI application. Import only in ``serve``."""
