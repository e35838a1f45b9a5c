"""The HTML pictures the documentation pages embed (chainrule.report)."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib.pyplot as plt

from chainrule.report import epoch_curves, figure_html, plot_curves, png_file_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def embedded_png(html_text: str) -> bytes:
    return base64.b64decode(html_text.split("base64,", 1)[1].split('"', 1)[0])


def test_figure_html_embeds_the_png_and_closes_the_figure() -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    text = figure_html(fig, alt="a <line>")
    assert embedded_png(text).startswith(PNG_SIGNATURE)
    assert 'alt="a &lt;line&gt;"' in text
    assert not plt.fignum_exists(fig.number)


def test_png_file_html_embeds_the_file_bytes_with_its_caption(tmp_path: Path) -> None:
    fig, _ = plt.subplots()
    picture = tmp_path / "samples.png"
    fig.savefig(picture)
    plt.close(fig)
    text = png_file_html(picture, "64 samples", caption="64 samples")
    assert embedded_png(text) == picture.read_bytes()
    assert text.startswith("<p><b>64 samples</b>") and str(picture) in text


def test_png_file_html_says_where_a_missing_picture_will_come_from(tmp_path: Path) -> None:
    text = png_file_html(tmp_path / "absent.png", "completions")
    assert "<img" not in text and "absent.png" in text and "published" in text


def test_curves_leave_out_a_last_epoch_cut_short_by_the_time_budget(tmp_path: Path) -> None:
    """A run whose budget ended one step into a new epoch: that epoch keeps its validation point
    but not its one-minibatch training mean; a full last epoch keeps both."""
    logs = tmp_path / "logs"
    (logs / "part0").mkdir(parents=True)
    rows = ["epoch,step,train_nll_epoch,val_nll"]
    for ep, step in [(0, 99), (1, 199), (2, 200)]:
        rows += [f"{ep},{step},,{90 - ep}", f"{ep},{step},{91 - ep - (5 if ep == 2 else 0)},"]
    (logs / "part0" / "metrics.csv").write_text("\n".join(rows) + "\n")
    train, val = epoch_curves(logs)
    assert train == {0: 91.0, 1: 90.0} and val == {0: 90.0, 1: 89.0, 2: 88.0}
    assert plot_curves(logs, tmp_path / "curves.png").stat().st_size > 0
    (logs / "part0" / "metrics.csv").write_text("\n".join(rows).replace("2,200", "2,299") + "\n")
    assert epoch_curves(logs)[0] == {0: 91.0, 1: 90.0, 2: 84.0}
