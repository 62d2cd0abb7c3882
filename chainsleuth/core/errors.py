"""Errors that the CLI turns into one clear message (file, byte offset, field), never a traceback."""

from __future__ import annotations


class ChainsleuthError(Exception):
    """Base of every error meant for the user."""


class InputError(ChainsleuthError):
    """Bad input data: names where it is and what is wrong."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.offset = offset
        self.field = field
        self.line = line
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        if field is not None:
            where.append(f"field {field}")
        self.message = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def __reduce__(self) -> tuple[object, ...]:
        # keep path/offset/field when the error crosses a process boundary (parse workers)
        return (
            _rebuild_input_error,
            (self.message, self.path, self.offset, self.field, self.line),
        )


def _rebuild_input_error(
    message: str,
    path: str | None,
    offset: int | None,
    field: str | None,
    line: int | None = None,
) -> InputError:
    return InputError(message, path=path, offset=offset, field=field, line=line)


class StoreError(ChainsleuthError):
    """The store is missing, from another network, or fails verification."""


class AddressNotSeenError(ChainsleuthError):
    """A valid address that no output of the store pays: the one message every lookup gives."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"address {address} has never been seen in the store")
