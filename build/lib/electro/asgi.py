"""ASGI entry point for hypercorn: ``hypercorn electro.asgi:app``."""

from electro.app import create_app

app = create_app()
