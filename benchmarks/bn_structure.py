"""Structure learning on networks sampled from tests/data/bif: chainrule against pgmpy, same samples.

Run: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bn_structure` (a few minutes; needs pgmpy,
which is in the `test` extra). Writes benchmarks/results/bn_structure.json.

For each network and training size (1k, 10k, 100k samples, seed 0) it learns a graph with
- chainrule's `learn_structure` (BIC, tabu search with 10 random restarts: the default),
- chainrule's Chow–Liu tree,
- pgmpy's HillClimbSearch with its BIC score (given the true state names, from the empty graph,
  tabu length 100, its defaults),
and reports for each: the structural Hamming distance to the true DAG (edge additions + deletions +
reversals), the BIC score of the graph on the training data, the held-out log-likelihood per sample
(CPDs of the learned graph counted from the training data with alpha = 1, the same for every
graph, scored on 10,000 fresh samples, seed 1; the true network's own figure is the ceiling) and
the wall time of the search. One thread (torch.set_num_threads(1)); set OMP_NUM_THREADS=1 too.
pgmpy runs whose expected time is too long (`--skip`) are recorded as skipped.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import torch

from benchmarks.common import write_result
from chainrule.graphical import BayesianNetwork, learn_structure, network_score, read_bif
from chainrule.graphical.structure_learning import edge_differences

BIF = Path(__file__).parent.parent / "tests" / "data" / "bif"
NETWORKS = ("asia", "sachs", "child", "insurance", "alarm")
SIZES = (1_000, 10_000, 100_000)
#: pgmpy runs to leave out (network:rows) when they would take too long; none by default (about 3 min in all).
SKIP: tuple[str, ...] = ()


def evaluate(
    true: BayesianNetwork, bn: BayesianNetwork, train: torch.Tensor, test: torch.Tensor, secs: float
) -> dict:
    """SHD parts, training BIC, held-out log-likelihood per sample and time of one learned graph."""
    fitted = BayesianNetwork([(v, true.state_names[v]) for v in true.names], bn.edges).fit(train, alpha=1.0)
    d = edge_differences(true, bn)
    return {
        "shd": d["shd"],
        "extra": d["extra"],
        "missing": d["missing"],
        "reversed": d["reversed"],
        "edges": len(bn.edges),
        "bic": network_score(bn, train, "bic"),
        "heldout_ll": float(fitted.log_prob(test).mean()),
        "seconds": secs,
    }


def pgmpy_hill_climb(true: BayesianNetwork, train: torch.Tensor) -> tuple[list[tuple[str, str]], float]:
    """pgmpy's HillClimbSearch with BIC on the same codes: (edges, seconds)."""
    import pandas as pd
    from pgmpy.estimators import BIC, HillClimbSearch

    states = {v: list(range(len(true.state_names[v]))) for v in true.names}
    frame = pd.DataFrame(train.numpy(), columns=true.names)
    t = time.perf_counter()
    dag = HillClimbSearch(frame, state_names=states).estimate(
        scoring_method=BIC(frame, state_names=states), show_progress=False
    )
    return [(str(p), str(c)) for p, c in dag.edges()], time.perf_counter() - t


def run_one(net: str, rows: int, test: torch.Tensor, true: BayesianNetwork, skip: set[str]) -> dict:
    train = true.sample(rows, generator=torch.Generator().manual_seed(0))
    variables = [(v, true.state_names[v]) for v in true.names]
    out: dict = {"network": net, "rows": rows, "true_edges": len(true.edges)}
    out["true_heldout_ll"] = float(true.log_prob(test).mean())
    out["true_bic"] = network_score(true, train, "bic")
    t = time.perf_counter()
    hc = learn_structure(train, variables, score="bic")
    out["chainrule"] = evaluate(true, hc, train, test, time.perf_counter() - t)
    t = time.perf_counter()
    cl = learn_structure(train, variables, method="chow-liu")
    out["chow_liu"] = evaluate(true, cl, train, test, time.perf_counter() - t)
    if f"{net}:{rows}" in skip:
        out["pgmpy"] = {"skipped": "expected to take too long for this benchmark (see --skip)"}
    else:
        edges, secs = pgmpy_hill_climb(true, train)
        out["pgmpy"] = evaluate(true, BayesianNetwork(variables, edges), train, test, secs)
    c, p = out["chainrule"], out["pgmpy"]
    theirs = (
        "skipped" if "skipped" in p else f"SHD {p['shd']:>3} ll {p['heldout_ll']:.4f} {p['seconds']:6.2f}s"
    )
    print(
        f"{net:>9} {rows:>7}: chainrule SHD {c['shd']:>3} ll {c['heldout_ll']:.4f} {c['seconds']:6.2f}s |"
        f" pgmpy {theirs} | chow-liu SHD {out['chow_liu']['shd']:>3} | true ll {out['true_heldout_ll']:.4f}",
        flush=True,
    )
    return out


def main(
    networks: tuple[str, ...] = NETWORKS, sizes: tuple[int, ...] = SIZES, skip: tuple[str, ...] = SKIP
) -> dict:
    with warnings.catch_warnings():  # pgmpy warns about its own deprecations on import
        warnings.simplefilter("ignore")
        from pgmpy import __version__ as pgmpy_version
    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    runs = []
    start = time.perf_counter()
    for net in networks:
        true = read_bif(BIF / f"{net}.bif.gz")
        test = true.sample(10_000, generator=torch.Generator().manual_seed(1))
        for rows in sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                runs.append(run_one(net, rows, test, true, set(skip)))
    return {
        "pgmpy_version": pgmpy_version,
        "runs": runs,
        "total_seconds": time.perf_counter() - start,
        "notes": "SHD = edge additions + deletions + reversals to the true DAG. heldout_ll = mean log p(x)"
        " in nats of 10,000 fresh samples (seed 1) under the learned graph with CPDs counted from the"
        " training samples (seed 0), alpha = 1. bic = BIC score of the graph on the training samples"
        " (higher is better). chainrule: learn_structure defaults (BIC, tabu search, patience 10, 10"
        " restarts); pgmpy: HillClimbSearch defaults with BIC and the true state names. Times are the"
        " search wall time on one thread. pgmpy iterates over sets: its result can change between runs.",
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated (default: all five)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="training sizes (default 1k,10k,100k)")
    p.add_argument("--skip", default=",".join(SKIP), help="pgmpy runs to skip, NET:ROWS,... ('' for none)")
    a = p.parse_args()
    skip = tuple(s for s in a.skip.split(",") if s)
    result = main(tuple(a.networks.split(",")), tuple(int(s) for s in a.sizes.split(",")), skip)
    print("wrote", write_result("bn_structure", result))
