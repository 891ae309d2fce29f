"""Checkpoints written like every other run file (cloudml.atomic): serialised in memory, written to
a temp file of this process beside the target and renamed over it. A full disk then gives one line
(the checkpoint's size against the free space) and leaves the previous checkpoint whole."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cloudml.atomic import write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, writing through cloudml.atomic (local paths only)."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"storage_options are not supported by {type(self).__name__}")
        buffer = io.BytesIO()  # Lightning's own writer serialises in memory first too
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getbuffer())
