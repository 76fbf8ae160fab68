"""Discord's error answers: status code, JSON error code and the ``{"code", "message", "errors"}`` shape."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error the sandbox answers with, exactly as Discord would."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            data["errors"] = self.errors
        return data


def unknown(what: str) -> APIError:
    codes = {
        "Channel": 10003, "Guild": 10004, "Member": 10007, "Message": 10008, "Role": 10011,
        "User": 10013, "Emoji": 10014, "Webhook": 10015, "Interaction": 10062, "Application": 10002,
        "application command": 10063,
    }
    return APIError(404, codes[what], f"Unknown {what}")


MISSING_PERMISSIONS = (403, 50013, "Missing Permissions")
MISSING_ACCESS = (403, 50001, "Missing Access")


def missing_permissions() -> APIError:
    return APIError(*MISSING_PERMISSIONS)


def missing_access() -> APIError:
    return APIError(*MISSING_ACCESS)


def unauthorized() -> APIError:
    return APIError(401, 0, "401: Unauthorized")


def not_found() -> APIError:
    return APIError(404, 0, "404: Not Found")


class FormErrors:
    """Collects field errors into Discord's nested ``errors`` tree for a 50035 Invalid Form Body."""

    def __init__(self, root: tuple[str | int, ...] = ()) -> None:
        self.tree: dict[str, Any] = {}
        self.root = root  # e.g. ("data",) for the message inside an interaction callback

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for part in (*self.root, *path):
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_length(self, path: tuple[str | int, ...], value: str | None, limit: int, minimum: int = 0) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.add(path, "BASE_TYPE_STRING", "Must be a string.")
        elif len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
        elif len(value) < minimum:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {minimum} and {limit} in length.")

    def max_items(self, path: tuple[str | int, ...], items: list[Any] | None, limit: int) -> None:
        if items is not None and len(items) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def __bool__(self) -> bool:
        return bool(self.tree)

    def raise_if_any(self) -> None:
        if self.tree:
            raise APIError(400, 50035, "Invalid Form Body", self.tree)
