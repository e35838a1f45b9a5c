"""Denormal floats flushed to zero on the CPU while chainrule trains or runs a command.

Weights that stop receiving a data gradient (those of a ReLU unit that never fires, under L2
weight decay) shrink into the denormal range, below 1.2e-38, where x86 CPUs compute each
operation in microcode, tens of times slower. A deep-rnade on white wine had 14,886 of its
196,530 weights denormal after 170 of 800 epochs, and its training step took 37.6 ms instead
of 5.3 ms (1 thread). Flush-to-zero and denormals-are-zero turn such values into 0, which
changes no likelihood by a measurable amount and keeps every step at full speed.

The flags live in each thread's control register, and a new thread inherits its creator's
(POSIX), so they are set where chainrule starts work: at the start of the CLI (before torch
starts its worker threads) and of `fit` (this thread, and workers it starts). They stay on for
the rest of the process: torch offers no way to read the previous setting to restore.
"""

from __future__ import annotations

import torch


def flush_denormals() -> bool:
    """Treat denormal floats as zero on this CPU thread and threads it starts from now on; False
    where the CPU has no such mode (torch.set_flush_denormal: x86 with SSE3, and ARM)."""
    return torch.set_flush_denormal(True)
