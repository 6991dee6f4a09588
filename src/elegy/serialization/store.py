"""A save directory that stays readable whatever happens while it is being written.

    path/
      LATEST          {"version": "v000003", "manifest_sha256": "..."}
      v000003/
        manifest.json format, kind, a sha256 for every file, and what the writer recorded
        ...           the files the writer put there (Orbax arrays, a pickled model)

A directory cannot be replaced by one rename, so a new save is written into a hidden
sibling (`.tmp-...`), flushed to disk, renamed to the next version number, and only then
made current by replacing `LATEST` (itself written to a temporary file, flushed and renamed).
A crash or a full disk at any instant leaves `LATEST` naming a complete version; older
versions are deleted only after the switch. Orbax keeps no checksums, so the manifest
records one per file: a truncated or altered file is an error, never a wrong model.

One writer at a time per directory is assumed. A reader may run while a save is being
written: `read_consistently` reads again if the version it was reading was replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import jax
import numpy as np
from jax.experimental import multihost_utils

from elegy.distributed import is_primary_process

T = TypeVar("T")

FORMAT = "elegy-save"
FORMAT_VERSION = 1
POINTER = "LATEST"
MANIFEST = "manifest.json"
_VERSION_NAME = re.compile(r"^v(\d{6,})$")
_TEMP_PREFIX = ".tmp-"


class InvalidSaveError(ValueError):
    """The directory is not a complete, unaltered Elegy save that this version can read.

    A `ValueError`. Every file of a save is checked against the SHA-256 its manifest
    records, and the manifest against the hash in `LATEST`, before anything is read.

    Examples:
        A save whose manifest was altered after writing:

        >>> import os, tempfile
        >>> import elegy
        >>> from elegy.serialization import InvalidSaveError, save_weights
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     version = save_weights(elegy.ModelBase(), folder)  # the States of a new model
        ...     with open(os.path.join(version, "manifest.json"), "a") as manifest:
        ...         _ = manifest.write(" ")
        ...     try:
        ...         elegy.load(folder)
        ...     except InvalidSaveError as error:
        ...         print(str(error).split(": ", 1)[1])
        does not match the hash recorded in LATEST
    """


@dataclasses.dataclass(frozen=True)
class SavedVersion:
    """A verified version of a save: its folder and its manifest."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return cast(str, self.manifest["kind"])


def write_version(path: str | os.PathLike[str], kind: str, write: Callable[[Path], dict[str, Any]]) -> Path:
    """Make a new version of the save at `path` with `write(folder)`, and make it current.

    `write` fills an empty folder and returns what the manifest should record about it.
    If it raises, the folder is removed and the previous version stays current.

    In a multi-process run every process calls this together (Orbax writes each process's
    shards of the arrays); process 0 alone creates the folder, writes the manifest and
    makes the version current, and all wait for each other in between.
    """
    root = _save_root(path)
    primary = is_primary_process()
    staging = root / f"{_TEMP_PREFIX}{shared_token()}"
    if primary:
        staging.mkdir()
    _wait_for_all_processes("elegy-save-begin")
    try:
        recorded = write(staging)
        _wait_for_all_processes("elegy-save-written")
        if primary:
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "kind": kind,
                **recorded,
                "files": _file_hashes(staging),
            }
            manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
            _write_durably(staging / MANIFEST, manifest_bytes)
            fsync_tree(staging)
            final = root / _version_name(_next_version(root))
            os.rename(staging, final)
    except BaseException:
        if primary:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if primary:
        _fsync_directory(root)
        pointer = {"version": final.name, "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}
        _replace_atomically(root / POINTER, json.dumps(pointer).encode())
        _remove_all_but(root, final.name)
    _wait_for_all_processes("elegy-save-done")
    if not primary:  # the version process 0 made current
        final = root / _read_json(root / POINTER, "the version pointer")["version"]
    return final


def shared_token() -> str:
    """A random name, the same in every process of a run (process 0's)."""
    if jax.process_count() == 1:
        return uuid.uuid4().hex
    token = multihost_utils.broadcast_one_to_all(np.frombuffer(uuid.uuid4().bytes, np.uint32))
    return bytes(np.asarray(token, np.uint32)).hex()


def _wait_for_all_processes(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def read_version(path: str | os.PathLike[str]) -> SavedVersion:
    """The current version of the save at `path`, after checking every file's hash."""
    root = _absolute(path)
    pointer_file = root / POINTER
    if not pointer_file.is_file():
        if not root.exists():
            raise FileNotFoundError(f"path: no save at {str(root)!r}")
        raise InvalidSaveError(
            f"path: {str(root)!r} is not an Elegy save (no {POINTER} file); "
            "expected a directory written by model.save or model.save_weights"
        )
    pointer = _read_json(pointer_file, "the pointer file")
    name = pointer.get("version") if isinstance(pointer, dict) else None
    if not isinstance(name, str) or not _VERSION_NAME.match(name):
        raise InvalidSaveError(f"{pointer_file}: does not name a version folder; the save is damaged")
    directory = root / name
    manifest_file = directory / MANIFEST
    if not manifest_file.is_file():
        raise InvalidSaveError(f"{manifest_file}: missing; the save is damaged or incomplete")
    manifest_bytes = manifest_file.read_bytes()
    if hashlib.sha256(manifest_bytes).hexdigest() != pointer.get("manifest_sha256"):
        raise InvalidSaveError(f"{manifest_file}: does not match the hash recorded in {POINTER}")
    manifest = _read_json(manifest_file, "the manifest")
    _check_format(manifest, manifest_file)
    check_files(directory, manifest["files"])
    return SavedVersion(directory, manifest)


def read_consistently(path: str | os.PathLike[str], read: Callable[[SavedVersion], T]) -> T:
    """`read(version)` on the current version of the save at `path`.

    A save running at the same time deletes the version it replaces; if that happens
    mid-read, the read is done again on the new version.
    """
    pointer = _absolute(path) / POINTER
    for attempt in (1, 2):
        before = pointer.read_bytes() if pointer.is_file() else None
        try:
            return read(read_version(path))
        except Exception:  # a vanished file surfaces as OSError, ValueError (tensorstore), ...
            after = pointer.read_bytes() if pointer.is_file() else None
            if attempt == 2 or before is None or after == before:
                raise
    raise AssertionError("unreachable")


def remove_save(path: str | os.PathLike[str]) -> None:
    """Delete the save at `path`: renamed away first, so a crash midway leaves no half save."""
    root = _absolute(path)
    doomed = root.with_name(f"{_TEMP_PREFIX}{root.name}-{uuid.uuid4().hex}")
    os.rename(root, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _absolute(path: str | os.PathLike[str]) -> Path:
    # Orbax (tensorstore) accepts only absolute paths.
    return Path(path).expanduser().absolute()


def _save_root(path: str | os.PathLike[str]) -> Path:
    """The save directory, created if needed; never an existing file or foreign folder."""
    root = _absolute(path)
    if root.exists() and not root.is_dir():
        raise ValueError(f"path: {str(root)!r} is a file; a save is a directory")
    if root.is_dir() and not (root / POINTER).exists():
        # Ours too: version folders whose switch a crash prevented, leftovers of saves.
        foreign = [
            p.name
            for p in root.iterdir()
            if not (p.name.startswith((_TEMP_PREFIX, ".")) or _VERSION_NAME.match(p.name))
        ]
        if foreign:
            raise ValueError(
                f"path: {str(root)!r} already holds files that are not an Elegy save "
                f"({', '.join(sorted(foreign)[:3])}...); refusing to write over them"
            )
    root.mkdir(parents=True, exist_ok=True)
    return root


def _next_version(root: Path) -> int:
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _VERSION_NAME.match(p.name))]
    return max(numbers, default=0) + 1


def _version_name(number: int) -> str:
    return f"v{number:06d}"


def _remove_all_but(root: Path, current: str) -> None:
    """Delete superseded versions and folders left by interrupted saves."""
    for entry in root.iterdir():
        if entry.name == current:
            continue
        if entry.name.startswith(_TEMP_PREFIX) and not entry.is_dir():
            entry.unlink(missing_ok=True)
        elif _VERSION_NAME.match(entry.name) or entry.name.startswith(_TEMP_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)


def _files(directory: Path) -> list[str]:
    """Every file below `directory`, except hidden ones (a file manager's .DS_Store)."""
    return sorted(
        f.relative_to(directory).as_posix()
        for f in directory.rglob("*")
        if f.is_file() and not f.name.startswith(".")
    )


def _file_hashes(directory: Path) -> dict[str, str]:
    return {name: file_sha256(directory / name) for name in _files(directory)}


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_format(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidSaveError(f"{where}: not an Elegy manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise InvalidSaveError(
            f"{where}: format version {version!r}; this Elegy reads version {FORMAT_VERSION}"
            + (" (the save comes from a newer Elegy: upgrade to read it)" if _newer(version) else "")
        )
    if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("kind"), str):
        raise InvalidSaveError(f"{where}: incomplete manifest")


def _newer(version: Any) -> bool:
    return isinstance(version, int) and version > FORMAT_VERSION


def check_files(directory: Path, expected: dict[str, str]) -> None:
    present = set(_files(directory)) - {MANIFEST}
    missing = sorted(set(expected) - present)
    extra = sorted(present - set(expected))
    changed = sorted(
        name for name in set(expected) & present if file_sha256(directory / name) != expected[name]
    )
    problems = [f"missing: {n}" for n in missing] + [f"altered: {n}" for n in changed]
    problems += [f"unexpected: {n}" for n in extra]
    if problems:
        raise InvalidSaveError(
            f"{directory}: the saved files do not match the manifest ({'; '.join(problems[:5])}"
            f"{'; ...' if len(problems) > 5 else ''}); the save is damaged or was modified"
        )


def _read_json(file: Path, what: str) -> Any:
    try:
        return json.loads(file.read_bytes())
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidSaveError(f"{file}: {what} is not valid JSON ({error}); the save is damaged") from None


def _write_durably(file: Path, data: bytes) -> None:
    with open(file, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _replace_atomically(file: Path, data: bytes) -> None:
    temporary = file.with_name(f"{_TEMP_PREFIX}{file.name}-{uuid.uuid4().hex}")
    try:
        _write_durably(temporary, data)
        os.replace(temporary, file)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(file.parent)


def fsync_tree(directory: Path) -> None:
    for entry in directory.rglob("*"):
        if entry.is_file():
            with open(entry, "rb+") as stream:
                os.fsync(stream.fileno())
        else:
            _fsync_directory(entry)
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms that cannot open directories (Windows) order renames anyway
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
