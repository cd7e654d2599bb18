"""API errors with OpenAI's error body (docs/worker-protocol.md, "Errors")."""

from __future__ import annotations


class ApiError(Exception):
    """An error that becomes an HTTP response: status, OpenAI error type, the field it is about."""

    def __init__(self, status: int, message: str, type_: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param)


def not_found(message: str, param: str | None = None) -> ApiError:
    return ApiError(404, message, "not_found_error", param)


def unauthorized(message: str = "missing or wrong API key (Authorization: Bearer KEY)") -> ApiError:
    return ApiError(401, message, "authentication_error", None, "invalid_api_key")


def server_error(message: str) -> ApiError:
    return ApiError(500, message, "server_error")
