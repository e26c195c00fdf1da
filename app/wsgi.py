"""The WSGI entry point for gunicorn: `gunicorn -k gevent app.wsgi:app`. Serving processes also run
the timers (only one process of a deployment ticks at a time)."""

from . import collector, create_app, timers

app = create_app()
timers.start(app)
collector.hold_long_lived()
