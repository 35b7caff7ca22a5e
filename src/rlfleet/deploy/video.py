"""Writing what an agent saw to MP4 (ffmpeg from imageio-ffmpeg) or GIF (Pillow); no display.

MP4 frames are encoded as they come (:class:`VideoWriter`), so a long episode (a MuJoCo
robot's 1,000 steps of 480x480 frames, an Atari game's thousands) is never held in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rlfleet.errors import RlfleetError

SUFFIXES = (".mp4", ".gif")


class VideoWriter:
    """RGB frames ``(H, W, 3)`` uint8, added one at a time, written to ``path`` (``.mp4`` or
    ``.gif``) when closed.

    Raises:
        RlfleetError: ``path`` has another suffix; or, on close, no frame was added.
    """

    def __init__(self, path: str | Path, *, fps: float = 30) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in SUFFIXES:
            raise RlfleetError(f"--video {self.path} must end in .mp4 or .gif.")
        self.fps = fps
        self.frames = 0
        self._gif: list[np.ndarray] = []
        self._mp4: Any = None

    def add(self, frame: np.ndarray) -> None:
        """Append one frame (all frames of a video must have the same size)."""
        frame = np.asarray(frame, np.uint8)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise RlfleetError(
                f"the environment rendered a frame of shape {frame.shape}, not (H, W, 3) RGB."
            )
        self.frames += 1
        if self.suffix == ".gif":
            self._gif.append(frame)
            return
        if self._mp4 is None:
            import imageio.v2 as imageio

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._mp4 = imageio.get_writer(
                self.path, fps=self.fps, codec="libx264", quality=7, macro_block_size=1
            )
        # even sizes, as H.264 requires
        self._mp4.append_data(frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2])

    def close(self) -> Path:
        """Finish the file; returns its path."""
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
        if not self.frames:
            raise RlfleetError("no frames to write (the environment rendered none).")
        if self._gif:
            import imageio.v2 as imageio

            self.path.parent.mkdir(parents=True, exist_ok=True)
            imageio.mimsave(self.path, self._gif, duration=1000 / self.fps, loop=0)
            self._gif = []
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def discard(self) -> None:
        """Stop, leaving no half-written file behind."""
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
            self.path.unlink(missing_ok=True)
        self._gif = []


def write_video(frames: Sequence[np.ndarray], path: str | Path, *, fps: float = 30) -> Path:
    """Write RGB frames (H, W, 3) to ``path``: ``.mp4`` or ``.gif``."""
    writer = VideoWriter(path, fps=fps)
    for frame in frames:
        writer.add(frame)
    return writer.close()
