"""Reading TOML files into validated models, with every problem reported at once.

Shared by the config, mapping, rules and job loaders so that each reports
its problems the same way: file, dotted key, message.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from connector.errors import ConfigError, Problem

M = TypeVar("M", bound=BaseModel)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file; a file that cannot be read or parsed is a ``ConfigError`` naming it.

    Missing, a folder, unreadable, not UTF-8 (TOML is UTF-8 by definition)
    or not valid TOML: each is one problem on the file, never a traceback.
    A leading UTF-8 byte-order mark, as some Windows editors write, is
    accepted.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _file_error(path, "file not found") from None
    except IsADirectoryError:
        raise _file_error(path, "is a folder, not a file") from None
    except PermissionError:
        raise _file_error(path, "cannot be read: permission denied") from None
    except OSError as error:
        raise _file_error(path, f"cannot be read: {error.strerror or type(error).__name__}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise _file_error(path, f"not UTF-8 text (byte 0x{raw[error.start]:02x} on line {line})") from None
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as error:
        raise _file_error(path, f"not valid TOML: {error}") from None


def _file_error(path: Path, message: str) -> ConfigError:
    problem = Problem(str(path), "", message)
    return ConfigError(str(problem), [problem])


def problems_from(
    error: ValidationError, file: str, prefix: str = "", union_tags: frozenset[str] = frozenset()
) -> list[Problem]:
    """One ``Problem`` per pydantic error, keyed by the dotted path of the TOML key.

    ``union_tags`` are discriminator values pydantic puts in error locations
    (a connection's ``type``); they are not keys of the file and are left out.
    """
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = item["loc"]
        parts = [part for index, part in enumerate(loc) if not (index == 2 and part in union_tags)]
        key = ".".join(str(part) for part in parts if not _is_union_tag(part))
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(Problem(file, key, message))
    return problems


def _is_union_tag(part: object) -> bool:
    # pydantic puts the union member's name in the location ("str", "function-after[...]")
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "list[str]", "FieldSpec"})


def validate_file(model: type[M], data: dict[str, Any], file: str) -> M:
    """Validate ``data`` as ``model`` or raise one ``ConfigError`` listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = problems_from(error, file)
        raise ConfigError(_summary(file, problems), problems) from None


def load_model(model: type[M], path: Path) -> M:
    return validate_file(model, read_toml(path), str(path))


def _summary(file: str, problems: list[Problem]) -> str:
    lines = [f"{file}: {len(problems)} problem(s)"] + [f"  {problem}" for problem in problems]
    return "\n".join(lines)


def raise_problems(file: str, problems: list[Problem]) -> None:
    if problems:
        raise ConfigError(_summary(file, problems), problems)
