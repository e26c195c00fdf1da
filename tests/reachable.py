"""`python -m tests.reachable URL`: exit 0 when the PostgreSQL or Redis server at URL answers, else say so
and exit 1. `make test` asks before its PostgreSQL and Redis runs."""

import sys

import redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool


def problem(url: str) -> str | None:
    """Why the server at `url` cannot be used, or None."""
    try:
        if url.startswith("redis"):
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        else:
            engine = create_engine(
                make_url(url).set(database="postgres"), poolclass=NullPool, connect_args={"connect_timeout": 2}
            )
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            engine.dispose()
    except (redis.RedisError, OperationalError) as error:
        return str(error).strip().splitlines()[0]
    return None


def main() -> int:
    url = sys.argv[1]
    reason = problem(url)
    if reason:
        print(f"{make_url(url).render_as_string()} does not answer ({reason}).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
