"""Training and the CLI flush denormal floats to zero (chainrule.denormals): weights decayed into
the denormal range made a deep-rnade's CPU training step 7x slower."""

from __future__ import annotations

import subprocess
import sys

import torch

from chainrule.data import load_dataset
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit

DENORMAL = 1e-40  # below float32's smallest normal number, 1.2e-38


def flushed() -> bool:
    return (torch.tensor([DENORMAL]) * 1.0).item() == 0.0


def test_fit_flushes_denormals_to_zero(tmp_path) -> None:
    torch.set_flush_denormal(False)
    assert not flushed()
    cfg = TrainConfig(batch_size=64, max_epochs=1, progress=False)
    fit(NADE(9, hidden=4), load_dataset("bars-3"), cfg, tmp_path / "run")
    assert flushed()


def test_the_cli_flushes_denormals_before_any_command() -> None:
    probe = "print((torch.tensor([1e-40]) * 1.0).item())"
    imported = f"import torch, chainrule.cli\n{probe}"
    ran = (
        "import contextlib, io, torch, chainrule.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    chainrule.cli.main(['datasets'])\n"
        f"{probe}"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for code in (imported, ran)
    ]
    assert float(outputs[0]) != 0.0  # importing chainrule changes nothing
    assert float(outputs[1]) == 0.0
