"""The notebook panel of a run, successor of the seed's ``RunDetails(run).show()``.

``RunDetails(run).show()`` (or ``run.show()``) displays the run's status, children, reward curve,
progress against its stop criteria and the tail of its driver log, and keeps that panel updated
from a background thread until the run ends. A run shown as the last expression of a cell renders
the same panel once (``Run._repr_html_``).
"""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

from rlfleet.monitor.progress import duration
from rlfleet.monitor.snapshot import REWARD, RunObserver, Snapshot

if TYPE_CHECKING:
    from rlfleet.runs.run import Run

_COLOURS = {
    "COMPLETED": "#2e7d32",
    "FAILED": "#c62828",
    "CANCELED": "#6d4c41",
    "RUNNING": "#1565c0",
}


def curve_svg(values: list[float], *, width: int = 420, height: int = 120) -> str:
    """An inline SVG line chart of ``values`` (no plotting library needed)."""
    if len(values) < 2:
        return '<svg width="420" height="24"><text x="0" y="16">no curve yet</text></svg>'
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 10) / (len(values) - 1)
    points = " ".join(
        f"{5 + i * step:.1f},{height - 5 - (v - low) / span * (height - 10):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg width="{width}" height="{height}" style="background:#fafafa">'
        f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{points}"/>'
        f'<text x="6" y="14" font-size="11">{high:.2f}</text>'
        f'<text x="6" y="{height - 8}" font-size="11">{low:.2f}</text></svg>'
    )


def panel_html(snap: Snapshot) -> str:
    """The panel as one HTML fragment."""
    colour = _COLOURS.get(snap.status.value, "#555")
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(c['role']))}</td><td>{esc(str(c['status']))}</td></tr>"
        for c in snap.children
    )
    stops = "".join(
        f"<tr><td>{esc(c.name)}</td><td>{'-' if c.current is None else f'{c.current:,.4g}'} / "
        f"{c.target:,.4g}</td><td><progress value='{c.progress or 0:.3f}' max='1'></progress></td>"
        f"<td>{'' if c.seconds_left is None else '~' + duration(c.seconds_left) + ' left'}</td></tr>"
        for c in snap.criteria
    )
    reward = f"{snap.rewards[-1]:.2f}" if snap.rewards else "-"
    log = esc("\n".join(snap.log_tail))
    return (
        f"<div class='rlfleet-run' style='font-family:sans-serif;font-size:13px'>"
        f"<div><b>run {esc(snap.run_id)}</b> {esc(snap.name)} &middot; experiment "
        f"{esc(snap.experiment)} &middot; <span style='color:{colour};font-weight:bold'>"
        f"{snap.status.value}</span> &middot; {duration(snap.elapsed_s)} &middot; nodes up "
        f"{snap.nodes_up}/{snap.nodes_total}</div>"
        f"<table><tr><th>child</th><th>status</th></tr>{rows}</table>"
        f"<div>{REWARD}: <b>{reward}</b></div>{curve_svg(snap.rewards)}"
        f"<table>{stops}</table>"
        f"<pre style='max-height:12em;overflow:auto;background:#f5f5f5'>{log}</pre></div>"
    )


class RunDetails:
    """A live panel of ``run`` in a notebook (``RunDetails(run).show()``)."""

    def __init__(self, run: Run, *, interval_s: float = 5.0) -> None:
        self.run = run
        self.interval_s = interval_s
        self._observer = RunObserver(run, log_lines=12)
        self._stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def html(self) -> str:
        return panel_html(self._observer.snapshot())

    def show(self) -> Any:
        """Display the panel and keep it updated until the run ends; returns the display handle."""
        from IPython.display import HTML, display

        snap = self._observer.snapshot()
        handle = display(HTML(panel_html(snap)), display_id=True)
        if not snap.status.is_terminal():
            self.thread = threading.Thread(target=self._update, args=(handle,), daemon=True)
            self.thread.start()
        return handle

    def stop(self) -> None:
        self._stopped.set()

    def _update(self, handle: Any) -> None:
        from IPython.display import HTML

        while not self._stopped.wait(self.interval_s):
            snap = self._observer.snapshot()
            handle.update(HTML(panel_html(snap)))
            if snap.status.is_terminal():
                return
