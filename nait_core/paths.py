"""The one rule for a process that serves others (the app): a path it reads or writes for a visitor must lie
inside one of its roots, after resolving it (`..`, and symlinks, even in a path that does not exist yet).
"""

from __future__ import annotations

from pathlib import Path


class OutsideRoot(ValueError):
    """A path that resolves outside every allowed root."""


def inside(path, roots, what: str = "path") -> Path:
    """`path` resolved (a relative one from the working folder, as the readers open it) when it lies in one
    of `roots` (the first is named in the error as the data root); else OutsideRoot naming both."""
    bases = [Path(root).resolve(strict=False) for root in roots]
    try:
        resolved = Path(path).resolve(strict=False)
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise OutsideRoot(f"{what} {path} cannot be resolved ({error})") from None
    if any(resolved.is_relative_to(base) for base in bases):
        return resolved
    shown = f" (it resolves to {resolved})" if str(resolved) != str(path) else ""
    others = f" (or {', '.join(str(b) for b in bases[1:])})" if len(bases) > 1 else ""
    raise OutsideRoot(
        f"{what} {path}{shown} is outside the data root {bases[0]}{others}: this app reads and writes only "
        f"there. Give a path inside it, or start the app with `nait app --data-root DIR`"
    )
