"""Matplotlib figures as self-contained <img> data URIs (headless Agg backend)."""

from __future__ import annotations

import base64
import io


def pyplot():
    """matplotlib.pyplot on the Agg backend (never opens a window)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_data_uri(fig) -> str:
    """PNG data URI of `fig`, which is closed afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
