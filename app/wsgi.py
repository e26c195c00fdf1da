"""The WSGI entry point for gunicorn: `gunicorn -k gevent app.wsgi:app`."""

from . import create_app

app = create_app()
