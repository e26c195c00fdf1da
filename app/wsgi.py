"""The WSGI entry point for gunicorn: `gunicorn -k gevent app.wsgi:app`. Serving processes also run
the timers (only one process of a deployment ticks at a time)."""

import gc

from . import create_app, timers

app = create_app()
timers.start(app)
# What start-up made lives as long as the process: the collector need not walk it again in every full
# collection, which with thousands of sockets open is what pauses delivery.
gc.freeze()
