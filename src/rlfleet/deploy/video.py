"""Writing what an agent saw to MP4 (ffmpeg from imageio-ffmpeg) or GIF (Pillow); no display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlfleet.errors import RlfleetError


def write_video(frames: Sequence[np.ndarray], path: str | Path, *, fps: int = 30) -> Path:
    """Write RGB frames (H, W, 3) to ``path``: ``.mp4`` or ``.gif``."""
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise RlfleetError(f"--video {path} must end in .mp4 or .gif.")
    if not frames:
        raise RlfleetError("no frames to write (the environment rendered none).")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        imageio.mimsave(path, list(frames), duration=1000 / fps, loop=0)
    else:
        # even sizes, as H.264 requires
        even = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames]
        imageio.mimwrite(path, even, fps=fps, codec="libx264", quality=7, macro_block_size=1)
    return path
