"""The engine's input errors, in a module of their own so that every reader (`data`, `sources`) can raise
them without importing another."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input. `where` is `file:line` (or `file:row N`), `field` the offending field."""

    def __init__(self, where: str, field_name: str | None, problem: str):
        self.where, self.field, self.problem = where, field_name, problem
        at = f"{where}: field '{field_name}'" if field_name else where
        super().__init__(f"{at}: {problem}")
