"""The Go versions memsim models, and which allocator generation each one follows.

Allocator rules change with the Go release, not with the patch release, so a version is resolved
to its minor version ("1.22.3" -> "1.22") and to one of three generations:

- ``classic`` (1.15-1.21): no malloc headers; the heap bitmap lives in the arena metadata.
- ``headers`` (1.22-1.25): pointerful objects over 512 B carry an 8-byte malloc header, and
  pointerful spans of objects up to 512 B keep their pointer bitmap at the end of the span.
- ``greentea`` (1.26 and later): the Green Tea collector is the default and reserves inline mark
  bits at the end of spans of 16-512 B objects.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_MINORS = range(15, 28)
KNOWN = tuple(f"1.{minor}" for minor in _MINORS)  # "1.15" .. "1.27"
OLDEST, NEWEST = KNOWN[0], KNOWN[-1]
GENERATIONS = ("classic", "headers", "greentea")
_FIRST_MINOR = {"classic": 15, "headers": 22, "greentea": 26}  # the first minor version of each generation

_RELEASE = re.compile(r"1\.(0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))?")


@dataclass(frozen=True)
class GoVersion:
    version: str  # the minor version whose rules apply, e.g. "1.22"
    generation: str  # one of GENERATIONS
    warning: str | None = None  # set when a newer version than NEWEST was asked for


def generation_of(minor: int) -> str:
    """The generation of Go 1.<minor> (``minor`` between the oldest and the newest known)."""
    return next(g for g in reversed(GENERATIONS) if minor >= _FIRST_MINOR[g])


def resolve_version(text: object) -> GoVersion:
    """``"1.22"`` or ``"1.22.3"`` -> the rules of Go 1.22. ValueError (with a message fit for the
    user) for anything else: a number (YAML reads an unquoted 1.20 as 1.2), junk, or a version older
    than OLDEST. A version newer than NEWEST takes NEWEST's rules, with a warning."""
    if isinstance(text, float):
        written = repr(text) + "0" if re.fullmatch(r"1\.[0-9]", repr(text)) else repr(text)
        misread = f" (an unquoted {written} is read as {text!r})" if written != repr(text) else ""
        raise ValueError(f'the Go version must be a quoted string, found the number {text!r}{misread}: '
                         f'write version: "{written}"')
    if not isinstance(text, str):
        raise ValueError(f'the Go version must be a quoted string such as "{NEWEST}", found {text!r}')
    match = _RELEASE.fullmatch(text)
    if not match:
        raise ValueError(f'{text!r} is not a Go version: expected a release such as "{NEWEST}" or "1.22.3"')
    minor = int(match.group(1))
    if minor in _MINORS:
        return GoVersion(f"1.{minor}", generation_of(minor))
    if minor > _MINORS[-1]:
        warning = f"Go {text} is newer than the newest known ({NEWEST}): using {NEWEST}'s rules"
        return GoVersion(NEWEST, generation_of(_MINORS[-1]), warning)
    raise ValueError(f"Go {text} is older than the oldest supported version ({OLDEST})")
