"""One error type for every refusal, rendered as JSON over HTTP and as an error frame over websockets."""

from flask import Flask, jsonify
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


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


def register(app: Flask) -> None:
    @app.errorhandler(ChatError)
    def chat_error(error: ChatError):
        return jsonify(error.body()), error.status

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return jsonify(ChatError(400, "csrf_failed", error.description).body()), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": error.description}}), error.code
