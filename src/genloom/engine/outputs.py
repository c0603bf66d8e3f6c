"""Where results are written: checked before any work starts, and never overwritten silently. Torch-free.

Output folders of ``genloom generate`` must be new or empty; ``overwrite=True`` removes the files of the earlier
genloom run recorded in the folder's ``manifest.json`` (and that manifest) and leaves anything else alone, so old
and new images never mix. Single output files are refused when they exist unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InvalidRequest

MANIFEST = "manifest.json"


def ensure_writable_folder(folder: str | os.PathLike[str], what: str = "output folder",
                           create: bool = True) -> Path:
    """Prove a file can be written in ``folder`` (typed error otherwise), creating it when ``create``; with
    ``create=False`` a missing folder is judged by its nearest existing parent and nothing is left behind."""
    out = Path(folder)
    try:
        if create:
            out.mkdir(parents=True, exist_ok=True)
        where = out
        while not where.exists() and where != where.parent:
            where = where.parent
        if not where.is_dir():
            raise NotADirectoryError(20, "a file is in the way", str(where))
        probe = where / f".genloom-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InvalidRequest(f"Cannot write to the {what} {str(out)!r} ({exc.strerror or exc}); pick a writable "
                             f"one.") from None
    return out


def prepare_output_folder(folder: str | os.PathLike[str], overwrite: bool, check_only: bool = False) -> Path:
    """Refuse a non-empty folder unless ``overwrite``; with it, remove the earlier run's recorded files
    (unless ``check_only``, which only checks). The folder is created and proven writable either way."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InvalidRequest(f"Output {str(out)!r} is a file, not a folder; pick a folder.")
    existing = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (" …" if len(existing) > 3 else "")
        raise InvalidRequest(f"Output folder {str(out)!r} is not empty ({shown}); pick a new folder, or pass "
                             f"--overwrite (API: overwrite=True) to replace the earlier run's files.")
    ensure_writable_folder(out, create=not check_only)
    if existing and overwrite and not check_only:
        for name in _recorded_files(out):
            (out / name).unlink(missing_ok=True)
    return out


def _recorded_files(out: Path) -> list[str]:
    manifest = out / MANIFEST
    if not manifest.is_file():
        return []
    try:
        files = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        files = []
    safe = [f for f in files if isinstance(f, str) and Path(f).name == f]  # names inside the folder only
    return safe + [MANIFEST]


def check_output_file(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing file unless ``overwrite``; prove its folder writable."""
    p = Path(path)
    if p.is_dir():
        raise InvalidRequest(f"Output {str(p)!r} is a folder; name a file.")
    if p.exists() and not overwrite:
        raise InvalidRequest(f"{str(p)!r} already exists; pick another name or pass --overwrite "
                             f"(API: overwrite=True).")
    ensure_writable_folder(p.parent, "folder", create=False)
    return p
