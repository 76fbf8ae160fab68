"""The translation of driver errors into domain errors (`guildkeep.errors`) on both backends."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, IntegrityError, NoResultFound, OperationalError

from guildkeep.errors import (
    ConflictError,
    DomainError,
    DuplicateError,
    ForeignKeyError,
    InsufficientFundsError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

__all__ = [
    "ConflictError",
    "DomainError",
    "DuplicateError",
    "ForeignKeyError",
    "InsufficientFundsError",
    "NotFoundError",
    "PermissionDeniedError",
    "ValidationError",
    "translate_db_error",
]


# SQLSTATE codes (PostgreSQL) for the classes we translate.
_PG_UNIQUE = "23505"
_PG_FOREIGN_KEY = "23503"
_PG_NOT_NULL = "23502"
_PG_CHECK = "23514"
_PG_TOO_LONG = "22001"  # string data right truncation
_PG_BAD_CHARACTER = {"22021", "22P05"}  # a NUL (or a character the encoding lacks) in text
_PG_CONFLICT = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        for attr in ("sqlstate", "pgcode"):
            code = getattr(node, attr, None)
            if isinstance(code, str):
                return code
        node = node.__cause__ or node.__context__
    return None


def translate_db_error(exc: BaseException) -> DomainError | None:
    """Map a SQLAlchemy/driver error to a domain error, or None when it is not one we know."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, NoResultFound):
        return NotFoundError()
    if not isinstance(exc, DBAPIError):
        return None
    code = _sqlstate(exc)
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if code is not None:
        if code == _PG_UNIQUE:
            return DuplicateError()
        if code == _PG_FOREIGN_KEY:
            return ForeignKeyError()
        if code in _PG_CONFLICT:
            return ConflictError()
        if code in (_PG_NOT_NULL, _PG_CHECK):
            return ValidationError()
        if code == _PG_TOO_LONG:
            return ValidationError("That text is too long.")
        if code in _PG_BAD_CHARACTER:
            return ValidationError("That text contains a character that can't be stored (such as NUL).")
        return None
    lowered = text.lower()
    if isinstance(exc, IntegrityError):
        if "unique constraint" in lowered or "primary key" in lowered:
            return DuplicateError()
        if "foreign key" in lowered:
            return ForeignKeyError()
        if "not null" in lowered or "check constraint" in lowered:
            return ValidationError()
        return None
    if isinstance(exc, OperationalError) and (
        "database is locked" in lowered or "database table is locked" in lowered or "busy" in lowered
    ):
        return ConflictError()
    if isinstance(exc.orig, sqlite3.OperationalError) and "locked" in lowered:
        return ConflictError()
    return None
