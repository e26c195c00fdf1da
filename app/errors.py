"""One error type for every refusal, rendered as JSON over HTTP and as an error frame over websockets."""

from flask import Flask, jsonify
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from .sqlite import DatabaseBusy


class ChatError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}

    def frame(self, **extra) -> dict:
        return {"type": "error", "code": self.code, "message": self.message, **extra}


def not_found(what: str = "conversation") -> ChatError:
    return ChatError(404, "not_found", f"No such {what}.")


class Busy(ChatError):
    """The database could not be had in time: SQLite's write lock held by another process past
    SQLITE_LOCK_WAIT_SECONDS, or every pooled PostgreSQL connection busy past DATABASE_POOL_TIMEOUT.
    Nothing was written, and the same request or frame succeeds once it eases; a socket stays open."""

    retry_after = 5

    def __init__(self) -> None:
        super().__init__(503, "database_busy", "The database is busy; nothing was stored. Try again shortly.")

    def body(self) -> dict:
        body = super().body()
        body["error"]["retry_after"] = self.retry_after
        return body

    def frame(self, **extra) -> dict:
        return super().frame(retry_after=self.retry_after, **extra)


# What Busy stands for, as the database layer raises it.
BUSY = (DatabaseBusy, PoolTimeout)


def register(app: Flask) -> None:
    @app.errorhandler(ChatError)
    def chat_error(error: ChatError):
        return jsonify(error.body()), error.status

    @app.errorhandler(DatabaseBusy)
    @app.errorhandler(PoolTimeout)
    def database_busy(_error: Exception):
        return jsonify(Busy().body()), 503, {"Retry-After": str(Busy.retry_after)}

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return jsonify(ChatError(400, "csrf_failed", error.description).body()), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": error.description}}), error.code
