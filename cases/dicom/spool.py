"""The listener's durable spool: every received instance is on disk (fsync'd, atomically renamed) before it is
handed to ingestion, with a small JSON file saying who sent it.

A spooled file is removed once ingestion has decided (stored, duplicate or rejected). What is left after a crash
or a kill (ingestion had not decided, so the peer got no success status) is ingested again when the listener next
starts; ingestion is idempotent by SOP Instance UID, so a peer that also sends it again does no harm. A file that
made ingestion fail with a fault of ours is moved to failed/ for an engineer rather than retried forever.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sender:
    ae_title: str
    address: str
    port: int
    called_ae_title: str
    association_id: str


@dataclass(frozen=True)
class SpooledFile:
    path: Path
    peer: Sender


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incoming = self.root / "incoming"
        self.failed = self.root / "failed"

    def prepare(self) -> None:
        for folder in (self.incoming, self.failed):
            folder.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes, *, name: str, peer: Sender) -> SpooledFile:
        """Durably store `data` as incoming/<name>.dcm with its peer record; returns the spooled file."""
        path = self.incoming / f"{name}.dcm"
        _write_durably(path.with_suffix(".json"), json.dumps(asdict(peer)).encode())
        _write_durably(path, data)
        return SpooledFile(path=path, peer=peer)

    def remove(self, spooled: SpooledFile) -> None:
        spooled.path.unlink(missing_ok=True)
        spooled.path.with_suffix(".json").unlink(missing_ok=True)
        _fsync_dir(self.incoming)

    def move_to_failed(self, spooled: SpooledFile) -> Path:
        target = self.failed / spooled.path.name
        os.replace(spooled.path, target)
        sidecar = spooled.path.with_suffix(".json")
        if sidecar.exists():
            os.replace(sidecar, target.with_suffix(".json"))
        _fsync_dir(self.failed)
        return target

    def leftovers(self) -> Iterator[SpooledFile]:
        """Files a previous run received but did not finish, oldest first (names start with a timestamp)."""
        for path in sorted(self.incoming.glob("*.dcm")):
            sidecar = path.with_suffix(".json")
            try:
                peer = Sender(**json.loads(sidecar.read_text()))
            except (OSError, ValueError, TypeError):
                peer = Sender(ae_title="", address="", port=0, called_ae_title="", association_id="unknown")
            yield SpooledFile(path=path, peer=peer)


def _write_durably(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """The rename itself must survive a power cut: sync the directory entry too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
