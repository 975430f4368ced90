"""``gone app``: remove people from photos in the browser (docs/app.md).

``create_app`` builds the Flask app (``gone.app.server``); ``add_arguments`` / ``main`` are the
``gone app`` subcommand; the page is the static files in ``gone/app/static/``.
"""
from gone.app.server import AppError, Engine, add_arguments, create_app, main, serve  # noqa: F401
