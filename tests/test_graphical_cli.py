"""`chainrule bn info | query | sample` on a BIF file: JSON out, one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainrule.cli import main

ASIA = str(Path(__file__).parent / "data" / "bif" / "asia.bif.gz")


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def test_info(capsys) -> None:
    rc, info, _ = run(capsys, "bn", "info", ASIA)
    assert rc == 0
    assert info["num_nodes"] == 8 and info["num_edges"] == 8
    assert ["either", "xray"] in info["edges"]
    assert info["free_parameters"] == {
        "bayesian_network": 18,
        "full_joint": 255,
        "independent": 8,
        "markov_chain": 15,
    }


def test_query(capsys) -> None:
    rc, res, _ = run(capsys, "bn", "query", ASIA, "--target", "lung")
    assert rc == 0 and res["evidence"] == {}
    assert [r["lung"] for r in res["distribution"]] == ["yes", "no"]
    assert res["distribution"][0]["p"] == pytest.approx(0.055)  # 0.5 * 0.1 + 0.5 * 0.01
    rc, res, _ = run(capsys, "bn", "query", ASIA, "--target", "lung,tub", "--evidence", "smoke=yes, xray=yes")
    assert rc == 0 and res["evidence"] == {"smoke": "yes", "xray": "yes"}
    assert len(res["distribution"]) == 4
    assert sum(r["p"] for r in res["distribution"]) == pytest.approx(1.0)


def test_sample(capsys, tmp_path: Path) -> None:
    out = tmp_path / "asia.csv"
    rc, res, _ = run(capsys, "bn", "sample", ASIA, "-n", "50", "--seed", "3", "--out", str(out))
    assert rc == 0 and res["n"] == 50
    lines = out.read_text().splitlines()
    assert lines[0] == "asia,tub,smoke,lung,bronc,either,xray,dysp"
    assert len(lines) == 51 and all(set(line.split(",")) <= {"yes", "no"} for line in lines[1:])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bn", "query", ASIA, "--target", "lung", "--evidence", "smoke=often"], "unknown state 'often'"),
        (["bn", "query", ASIA, "--target", "lung", "--evidence", "smoke"], "VARIABLE=STATE"),
        (["bn", "query", ASIA, "--target", "lungs"], "unknown variable 'lungs'"),
        (["bn", "info", "missing.bif"], "does not exist"),
        (["bn", "sample", ASIA, "-n", "0", "--out", "x.csv"], "-n must be at least 1"),
        (["bn"], "needs an action"),
    ],
)
def test_errors_are_one_line(capsys, argv: list[str], message: str) -> None:
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert err.startswith("chainrule: error: ") and message in err and err.count("\n") == 1


def test_fit_then_kl_exact_next_to_monte_carlo_then_eval(capsys, tmp_path: Path) -> None:
    """bn sample -> bn fit (structure kept) -> kl exact by variable elimination, and its Monte
    Carlo estimate within a few standard errors -> eval of the learned network on held-out codes."""
    data, learned = tmp_path / "asia.csv", tmp_path / "learned.bif"
    assert run(capsys, "bn", "sample", ASIA, "-n", "500", "--codes", "--out", str(data))[0] == 0
    rc, out, _ = run(capsys, "bn", "fit", str(data), "--structure", ASIA, "--out", str(learned))
    assert rc == 0 and out["rows"] == 500
    rc, exact, _ = run(capsys, "kl", ASIA, str(learned))
    assert rc == 0 and exact["method"] == "variable-elimination" and exact["kl"] > 0
    rc, mc, _ = run(capsys, "kl", ASIA, str(learned), "--monte-carlo", "-n", "20000")
    assert rc == 0 and mc["method"] == "monte-carlo"
    assert abs(mc["kl"] - exact["kl"]) < 4 * mc["stderr"]
    rc, nll, _ = run(capsys, "eval", str(learned), "--data", f"csv:{data}", "--split", "test")
    assert rc == 0 and nll["n"] == 50 and nll["nll_nats"] > 0


def test_kl_refuses_models_over_different_events(capsys, tmp_path: Path) -> None:
    rc, _, err = run(capsys, "kl", ASIA, str(Path(ASIA).with_name("sachs.bif.gz")))
    assert rc != 0 and len(err.strip().splitlines()) == 1


def test_fit_learn_hill_climb_and_chow_liu(capsys, tmp_path: Path) -> None:
    """bn fit --learn: a graph learned from codes (states 0..k-1, or named by --states) written as
    BIF, close to the true graph, and compared with it by exact KL."""
    from chainrule.graphical import read_bif, structural_hamming_distance

    data = tmp_path / "asia.csv"
    assert run(capsys, "bn", "sample", ASIA, "-n", "5000", "--codes", "--out", str(data))[0] == 0
    hc, cl = tmp_path / "hc.bif", tmp_path / "cl.bif"
    rc, out, _ = run(capsys, "bn", "fit", str(data), "--learn", "--max-indegree", "2", "--out", str(hc))
    assert rc == 0 and out["learn"] == "hill-climb" and out["score"] == "bic" and out["max_indegree"] == 2
    learned = read_bif(hc)
    assert learned.state_names["smoke"] == ["0", "1"]  # states from the data
    assert structural_hamming_distance(read_bif(ASIA), learned) <= 3
    argv = ["bn", "fit", str(data), "--learn", "chow-liu", "--states", ASIA, "--out", str(cl)]
    rc, out, _ = run(capsys, *argv)
    assert rc == 0 and out["learn"] == "chow-liu" and out["edges"] == 7
    assert read_bif(cl).state_names["smoke"] == ["yes", "no"]
    rc, kl, _ = run(capsys, "kl", ASIA, str(cl))
    assert rc == 0 and kl["method"] == "variable-elimination" and 0 < kl["kl"] < 0.1
    rc, _, err = run(capsys, "bn", "fit", str(data), "--out", str(cl))
    assert rc == 2 and "--structure FILE" in err
