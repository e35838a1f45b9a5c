"""Exact Bayesian-network queries: chainrule's variable elimination against pgmpy's, on ALARM.

Run: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bn_inference` (about 10 s; needs pgmpy,
which is in the `test` extra). Writes benchmarks/results/bn_inference.json.

The same random queries (1-3 targets, 0-4 evidence variables whose values come from a sample of
the network, so every evidence set has positive probability) go to both libraries; each query is
timed as the best of a few repeats, and the reported figure is the median over queries.
chainrule caches a plan per query signature (targets, evidence variables), so it is timed twice:
"cold" clears the cache before every call (what a never-seen query costs), "warm" does not.
pgmpy's VariableElimination.query runs with its defaults (greedy contraction order).

`--kl` instead measures KL(ALARM || learned), where "learned" has ALARM's structure and CPDs
counted (Laplace smoothing, `fit`'s default) from 10,000 ALARM samples: exact by variable
elimination, and a Monte Carlo estimate with its standard error from 20,000 samples, each timed.
Writes benchmarks/results/bn_kl.json.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import best_time, write_result
from chainrule.graphical import read_bif
from chainrule.graphical.random_queries import random_queries

ALARM = Path(__file__).parent.parent / "tests" / "data" / "bif" / "alarm.bif.gz"


def pgmpy_table(ve, targets: list[str], evidence: dict[str, str]) -> np.ndarray:
    phi = ve.query(targets, evidence=evidence or None, show_progress=False)
    return np.transpose(phi.values, [phi.variables.index(t) for t in targets])


def main(num_queries: int = 60, repeats: int = 5) -> dict:
    with warnings.catch_warnings():  # pgmpy warns about its own deprecations on import
        warnings.simplefilter("ignore")
        from pgmpy import __version__ as pgmpy_version
        from pgmpy.inference import VariableElimination
        from pgmpy.readwrite import BIFReader

    torch.set_num_threads(1)
    bn = read_bif(ALARM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ve = VariableElimination(BIFReader(string=gzip.decompress(ALARM.read_bytes()).decode()).get_model())
    queries = random_queries(bn, num_queries)

    ours_cold, ours_warm, theirs, errors = [], [], [], []
    for targets, evidence in queries:
        errors.append(
            float(np.abs(bn.query(targets, evidence).numpy() - pgmpy_table(ve, targets, evidence)).max())
        )

        def cold(targets=targets, evidence=evidence):
            bn.clear_plan_cache()
            return bn.query(targets, evidence)

        theirs.append(best_time(lambda t=targets, e=evidence: pgmpy_table(ve, t, e), repeats=repeats))
        ours_cold.append(best_time(cold, repeats=repeats))
        ours_warm.append(best_time(lambda t=targets, e=evidence: bn.query(t, e), repeats=repeats))

    med = {k: statistics.median(v) for k, v in [("pgmpy", theirs), ("cold", ours_cold), ("warm", ours_warm)]}
    out = {
        "network": "alarm (37 variables, 46 edges, 509 free parameters)",
        "num_queries": len(queries),
        "pgmpy_version": pgmpy_version,
        "pgmpy_median_s": med["pgmpy"],
        "chainrule_cold_median_s": med["cold"],
        "chainrule_warm_median_s": med["warm"],
        "speedup_cold": med["pgmpy"] / med["cold"],
        "speedup_warm": med["pgmpy"] / med["warm"],
        "max_abs_difference": max(errors),
        "notes": "per query: best of "
        f"{repeats} repeats; figures are medians over queries. cold = chainrule's plan cache cleared"
        " before every call; warm = plan cached. One thread (torch.set_num_threads(1)); set"
        " OMP_NUM_THREADS=1 as well.",
    }
    print(
        f"alarm, {len(queries)} queries: pgmpy {med['pgmpy'] * 1e6:.0f} us, chainrule cold"
        f" {med['cold'] * 1e6:.0f} us ({out['speedup_cold']:.1f}x), warm {med['warm'] * 1e6:.0f} us"
        f" ({out['speedup_warm']:.1f}x); max |difference| {out['max_abs_difference']:.1e}",
        flush=True,
    )
    return out


def kl_main(train: int = 10_000, mc: int = 20_000) -> dict:
    """Exact (variable elimination) and Monte Carlo KL between ALARM and a network learned from it."""
    import time

    from chainrule.graphical import BayesianNetwork
    from chainrule.kl import kl_divergence

    torch.set_num_threads(1)
    alarm = read_bif(ALARM)
    x = alarm.sample(train, generator=torch.Generator().manual_seed(0))
    learned = BayesianNetwork(dict(alarm.state_names), alarm.edges, name="learned").fit(x)
    t = time.perf_counter()
    exact = kl_divergence(alarm, learned)
    exact_s = time.perf_counter() - t
    t = time.perf_counter()
    est = kl_divergence(alarm, learned, data=alarm.sample(mc, generator=torch.Generator().manual_seed(1)))
    mc_s = time.perf_counter() - t
    out = {
        "network": "alarm (37 variables, 509 free parameters) vs the same structure counted from"
        f" {train} of its samples (alpha = 1)",
        "kl_exact_nats": exact["kl"],
        "exact_seconds": exact_s,
        "kl_mc_nats": est["kl"],
        "kl_mc_stderr": est["stderr"],
        "mc_samples": mc,
        "mc_seconds": mc_s,
        "z": (est["kl"] - exact["kl"]) / est["stderr"],
    }
    print(
        f"KL(alarm || learned from {train}): exact {exact['kl']:.6f} nats in {exact_s * 1e3:.1f} ms;"
        f" Monte Carlo ({mc} samples) {est['kl']:.6f} +- {est['stderr']:.6f} in {mc_s * 1e3:.0f} ms",
        flush=True,
    )
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=60, help="number of random queries (default 60)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per query (default 5)")
    p.add_argument("--kl", action="store_true", help="measure KL(alarm || learned) instead (no pgmpy)")
    args = p.parse_args()
    if args.kl:
        print("wrote", write_result("bn_kl", kl_main()))
    else:
        print("wrote", write_result("bn_inference", main(args.queries, args.repeats)))
