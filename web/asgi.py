"""Entry point for ASGI servers: ``uvicorn --factory web.asgi:create``."""

from core.settings import load_settings
from web.app import create_app


def create():
    return create_app(load_settings())
