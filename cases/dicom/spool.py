"""The listener's durable spool: every received instance is on disk (fsync'd, atomically renamed, by the media
store's one atomic write, core.storage.write_atomically) before it is handed to ingestion, with a small JSON
file saying who sent it. The spool is this host's local disk by design, whatever the media store is: it is the
listener's durability before ingestion, and ingestion takes the spooled file as it is (no copy in memory).

A spooled file is removed once ingestion has decided (stored, duplicate or rejected). What is left after a crash
or a kill (ingestion had not decided, so the peer got no success status) is ingested again when the listener next
starts; ingestion is idempotent by SOP Instance UID, so a peer that also sends it again does no harm. A file that
made ingestion fail with a fault of ours is moved to failed/ for an engineer rather than retried forever.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from core.storage import fsync_dir, write_atomically


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
        write_atomically(path.with_suffix(".json"), json.dumps(asdict(peer)).encode())
        write_atomically(path, data)
        return SpooledFile(path=path, peer=peer)

    def remove(self, spooled: SpooledFile) -> None:
        spooled.path.unlink(missing_ok=True)
        spooled.path.with_suffix(".json").unlink(missing_ok=True)
        fsync_dir(self.incoming)

    def move_to_failed(self, spooled: SpooledFile) -> Path:
        target = self.failed / spooled.path.name
        os.replace(spooled.path, target)
        sidecar = spooled.path.with_suffix(".json")
        if sidecar.exists():
            os.replace(sidecar, target.with_suffix(".json"))
        fsync_dir(self.failed)
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
