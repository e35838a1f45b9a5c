"""Hostile and clumsy CLI flags: each case is one argv; it must give a one-line error, or (where
either answer is right) a correct result, and write nothing outside out/."""

from __future__ import annotations

import json

import pytest

from tests.hostile.conftest import BIF_DIR, assert_ok, assert_one_line_error, assert_refused_or_ok

ASIA = str(BIF_DIR / "asia.bif.gz")
HUGE = str(2**80)

# (case id, argv with {nade}/{vae}/{tf}/{rnn}/{wavenet}/{gpcnn}/{asia}/{out}/{file} placeholders, expect)
ERRORS: list[tuple[str, list[str]]] = [
    # sample
    ("sample-n-negative", ["sample", "{nade}", "-n", "-1", "--out", "{out}/s.png"]),
    ("sample-n-zero", ["sample", "{nade}", "-n", "0", "--out", "{out}/s.png"]),
    ("sample-n-float", ["sample", "{nade}", "-n", "1.5", "--out", "{out}/s.png"]),
    ("sample-n-word", ["sample", "{nade}", "-n", "many", "--out", "{out}/s.png"]),
    ("sample-absent-model", ["sample", "{out}/no/such/model", "--out", "{out}/s.png"]),
    ("sample-model-is-file", ["sample", "{nade}/config.json", "--out", "{out}/s.png"]),
    ("sample-out-is-folder", ["sample", "{nade}", "-n", "2", "--out", "{out}"]),
    ("sample-out-under-a-file", ["sample", "{nade}", "-n", "2", "--out", "{file}/sub/s.png"]),
    ("sample-out-unwritable", ["sample", "{nade}", "-n", "2", "--out", "/proc/chainrule-hostile/s.png"]),
    ("sample-out-inside-model", ["sample", "{nade}", "-n", "2", "--out", "{nade}/s.png"]),
    ("sample-out-over-weights", ["sample", "{nade}", "-n", "2", "--out", "{nade}/model.safetensors"]),
    ("sample-out-over-config-csv", ["sample", "{asia}", "-n", "2", "--out", "{asia}/config.csv"]),
    ("sample-per-class-not-class-model", ["sample", "{nade}", "--per-class", "2", "--out", "{out}/s.png"]),
    ("sample-per-class-zero", ["sample", "{gpcnn}", "--per-class", "0", "--out", "{out}/s.png"]),
    ("sample-per-class-negative", ["sample", "{gpcnn}", "--per-class", "-3", "--out", "{out}/s.png"]),
    ("sample-sequence-model", ["sample", "{tf}", "-n", "2", "--out", "{out}/s.csv"]),
    ("sample-png-without-image-shape", ["sample", "{asia}", "-n", "2", "--out", "{out}/s.png"]),
    ("sample-method-unknown", ["sample", "{nade}", "--method", "magic", "--out", "{out}/s.png"]),
    # generate
    ("generate-temperature-nan", ["generate", "{tf}", "-n", "5", "--temperature", "nan"]),
    ("generate-temperature-negative", ["generate", "{tf}", "-n", "5", "--temperature", "-1"]),
    ("generate-temperature-minus-inf", ["generate", "{tf}", "-n", "5", "--temperature", "-inf"]),
    ("generate-top-k-zero", ["generate", "{tf}", "-n", "5", "--top-k", "0"]),
    ("generate-top-k-negative", ["generate", "{tf}", "-n", "5", "--top-k", "-5"]),
    ("generate-top-k-float", ["generate", "{tf}", "-n", "5", "--top-k", "1.5"]),
    ("generate-top-p-zero", ["generate", "{tf}", "-n", "5", "--top-p", "0"]),
    ("generate-top-p-above-one", ["generate", "{tf}", "-n", "5", "--top-p", "1.5"]),
    ("generate-top-p-nan", ["generate", "{tf}", "-n", "5", "--top-p", "nan"]),
    ("generate-top-p-negative", ["generate", "{tf}", "-n", "5", "--top-p", "-0.1"]),
    ("generate-n-negative", ["generate", "{tf}", "-n", "-1"]),
    ("generate-samples-zero", ["generate", "{tf}", "-n", "3", "--samples", "0"]),
    ("generate-prompt-out-of-vocab", ["generate", "{tf}", "-n", "3", "--prompt", "xyz"]),
    ("generate-image-model", ["generate", "{nade}", "-n", "3"]),
    ("generate-audio-without-out", ["generate", "{wavenet}", "-n", "3"]),
    (
        "generate-audio-with-prompt",
        ["generate", "{wavenet}", "-n", "3", "--prompt", "ab", "--out", "{out}/a.wav"],
    ),
    ("generate-out-inside-model", ["generate", "{tf}", "-n", "3", "--out", "{tf}/gen.txt"]),
    ("generate-out-is-folder", ["generate", "{tf}", "-n", "3", "--out", "{out}"]),
    ("generate-out-over-config", ["generate", "{tf}", "-n", "3", "--out", "{tf}/config.json"]),
    # eval
    ("eval-wrong-dimension-data", ["eval", "{nade}", "--data", "bars-3"]),
    ("eval-k-ary-data-on-binary-model", ["eval", "{nade}", "--data", "digits-17"]),
    ("eval-sequence-model-on-images", ["eval", "{tf}", "--data", "digits"]),
    ("eval-image-model-on-text", ["eval", "{nade}", "--data", "text:{file}"]),
    ("eval-unknown-dataset", ["eval", "{nade}", "--data", "no-such-data"]),
    ("eval-k-for-exact-model", ["eval", "{nade}", "--data", "digits", "--k", "5"]),
    ("eval-masks-for-nade", ["eval", "{nade}", "--data", "digits", "--masks", "3"]),
    ("eval-orderings-for-nade", ["eval", "{nade}", "--data", "digits", "--orderings", "3"]),
    ("eval-batch-size-zero", ["eval", "{nade}", "--data", "digits", "--batch-size", "0"]),
    ("eval-batch-size-negative", ["eval", "{nade}", "--data", "digits", "--batch-size", "-1"]),
    ("eval-limit-zero", ["eval", "{nade}", "--data", "digits", "-n", "0"]),
    ("eval-limit-negative", ["eval", "{nade}", "--data", "digits", "-n", "-5"]),
    ("eval-vae-k-zero", ["eval", "{vae}", "--data", "digits", "--k", "0"]),
    ("eval-vae-k-negative", ["eval", "{vae}", "--data", "digits", "--k", "-1"]),
    ("eval-split-unknown", ["eval", "{nade}", "--data", "digits", "--split", "holdout"]),
    ("eval-no-data", ["eval", "{nade}"]),
    # complete
    (
        "complete-unknown-mask",
        ["complete", "{nade}", "--data", "digits", "--mask", "nosuch", "--out", "{out}/c.png"],
    ),
    ("complete-n-zero", ["complete", "{nade}", "--data", "digits", "-n", "0", "--out", "{out}/c.png"]),
    (
        "complete-samples-zero",
        ["complete", "{nade}", "--data", "digits", "--samples", "0", "--out", "{out}/c.png"],
    ),
    (
        "complete-superres-on-nade",
        ["complete", "{nade}", "--data", "digits", "--superres", "--out", "{out}/c.png"],
    ),
    ("complete-sequence-model", ["complete", "{tf}", "--data", "digits", "--out", "{out}/c.png"]),
    ("complete-wrong-data", ["complete", "{nade}", "--data", "bars-3", "--out", "{out}/c.png"]),
    (
        "complete-out-inside-model",
        ["complete", "{nade}", "--data", "digits", "-n", "2", "--out", "{nade}/c.png"],
    ),
    # score
    (
        "score-ood-wrong-shape",
        ["score", "{nade}", "--data", "digits", "--ood-data", "bars-3", "--out", "{out}/o.png"],
    ),
    (
        "score-n-zero",
        ["score", "{nade}", "--data", "digits", "--ood-data", "digits", "-n", "0", "--out", "{out}/o.png"],
    ),
    (
        "score-batch-size-zero",
        [
            "score",
            "{nade}",
            "--data",
            "digits",
            "--ood-data",
            "digits",
            "--batch-size",
            "0",
            "--out",
            "{out}/o.png",
        ],
    ),
    (
        "score-k-for-exact-model",
        ["score", "{nade}", "--data", "digits", "--ood-data", "digits", "--k", "3", "--out", "{out}/o.png"],
    ),
    (
        "score-background-absent",
        [
            "score",
            "{nade}",
            "--data",
            "digits",
            "--ood-data",
            "digits",
            "--background",
            "{out}/none",
            "--out",
            "{out}/o.png",
        ],
    ),
    # kl
    ("kl-absent-q", ["kl", ASIA, "{out}/none.bif"]),
    ("kl-incompatible-models", ["kl", "{nade}", "{tf}"]),
    ("kl-monte-carlo-n-zero", ["kl", ASIA, ASIA, "--monte-carlo", "-n", "0"]),
    ("kl-monte-carlo-n-negative", ["kl", ASIA, ASIA, "--monte-carlo", "-n", "-4"]),
    # demo
    ("demo-epochs-zero", ["demo", "--epochs", "0", "--out", "{out}/demo"]),
    ("demo-epochs-negative", ["demo", "--epochs", "-1", "--out", "{out}/demo"]),
    ("demo-out-is-file", ["demo", "--epochs", "1", "--out", "{file}"]),
    # train
    ("train-absent-recipe", ["train", "{out}/none.yaml", "--out", "{out}/run"]),
    ("train-recipe-is-folder", ["train", "{out}", "--out", "{out}/run"]),
    ("train-out-is-file", ["train", "{recipe}", "--out", "{file}"]),
    ("train-devices-zero", ["train", "{recipe}", "--out", "{out}/run", "--devices", "0"]),
    ("train-devices-negative", ["train", "{recipe}", "--out", "{out}/run", "--devices", "-1"]),
    ("train-num-nodes-zero", ["train", "{recipe}", "--out", "{out}/run", "--num-nodes", "0"]),
    ("train-gpu-without-gpu", ["train", "{recipe}", "--out", "{out}/run", "--accelerator", "gpu"]),
    ("train-data-wrong-kind", ["train", "{recipe}", "--out", "{out}/run", "--data", "text:{file}"]),
    ("train-resume-without-checkpoint", ["train", "{recipe}", "--out", "{out}/run", "--resume"]),
    ("train-out-inside-model", ["train", "{recipe}", "--out", "{nade}"]),
    # bn
    ("bn-query-unknown-target", ["bn", "query", ASIA, "--target", "nosuch"]),
    ("bn-query-unknown-state", ["bn", "query", ASIA, "--target", "lung", "--evidence", "smoke=maybe"]),
    ("bn-query-malformed-evidence", ["bn", "query", ASIA, "--target", "lung", "--evidence", "smoke"]),
    ("bn-query-unknown-evidence-var", ["bn", "query", ASIA, "--target", "lung", "--evidence", "ghost=yes"]),
    ("bn-sample-n-zero", ["bn", "sample", ASIA, "-n", "0", "--out", "{out}/s.csv"]),
    ("bn-sample-n-negative", ["bn", "sample", ASIA, "-n", "-1", "--out", "{out}/s.csv"]),
    ("bn-sample-out-is-folder", ["bn", "sample", ASIA, "-n", "3", "--out", "{out}"]),
    (
        "bn-fit-alpha-negative",
        ["bn", "fit", "{csv}", "--structure", ASIA, "--alpha", "-1", "--out", "{out}/f.bif"],
    ),
    (
        "bn-fit-alpha-nan",
        ["bn", "fit", "{csv}", "--structure", ASIA, "--alpha", "nan", "--out", "{out}/f.bif"],
    ),
    ("bn-fit-wrong-columns", ["bn", "fit", "{csv}", "--structure", ASIA, "--out", "{out}/f.bif"]),
    ("bn-info-not-bif", ["bn", "info", "{file}"]),
    ("bn-info-folder", ["bn", "info", "{out}"]),
    # classifier, data, defend
    ("classifier-eval-density-model", ["classifier", "eval", "{nade}", "--data", "digits"]),
    (
        "classifier-train-lr-nan",
        ["classifier", "train", "--data", "digits", "--lr", "nan", "--out", "{out}/c"],
    ),
    (
        "classifier-train-dropout-above-one",
        ["classifier", "train", "--data", "digits", "--dropout", "1.5", "--out", "{out}/c"],
    ),
    (
        "classifier-train-channels-words",
        ["classifier", "train", "--data", "digits", "--channels", "a,b", "--out", "{out}/c"],
    ),
    (
        "classifier-train-epochs-zero",
        ["classifier", "train", "--data", "digits", "--epochs", "0", "--out", "{out}/c"],
    ),
    ("data-info-absent", ["data", "info", "{out}/none"]),
    ("data-synth-n-negative", ["data", "synth", "{out}/syn", "--n", "-1"]),
    ("data-export-unknown", ["data", "export", "no-such-data", "{out}/exp"]),
    (
        "defend-absent-classifier",
        ["defend", "{nade}", "--classifier", "{out}/none", "--data", "digits", "--out", "{out}/d.png"],
    ),
    (
        "defend-eps-words",
        [
            "defend",
            "{nade}",
            "--classifier",
            "{nade}",
            "--data",
            "digits",
            "--eps",
            "abc",
            "--out",
            "{out}/d.png",
        ],
    ),
    ("unknown-command", ["frobnicate"]),
]


def fill(ws, argv: list[str]) -> list[str]:
    names = {
        "nade": "nade",
        "vae": "vae",
        "tf": "tf",
        "rnn": "rnn",
        "wavenet": "wavenet",
        "gpcnn": "gpcnn-classes",
    }
    sub = {k: str(ws.model(v)) for k, v in names.items() if any("{" + k + "}" in a for a in argv)}
    if any("{asia}" in a for a in argv):
        sub["asia"] = str(ws.model("asia-model"))
    sub["out"] = str(ws.out)
    sub["file"] = str(ws.file("notes.txt", "just some text, not a model\n" * 20))
    sub["recipe"] = str(ws.file("r.yaml", RECIPE))
    sub["csv"] = str(ws.file("d.csv", "a,b\n" + "0,1\n" * 30))
    return [a.format(**sub) for a in argv]


RECIPE = (
    "model: {name: nade, hidden: 8}\ndata: {name: digits}\n"
    "train: {batch_size: 64, max_epochs: 1, lr: 0.01, seed: 0}\n"
)


@pytest.mark.parametrize(("case", "argv"), ERRORS, ids=[c for c, _ in ERRORS])
def test_cli_refuses(ws, case, argv) -> None:
    r = ws.cli(*fill(ws, argv))
    assert_one_line_error(r)


# -- cases where a correct answer is as good as a refusal ------------------------------------------
EITHER: list[tuple[str, list[str]]] = [
    ("sample-huge-seed", ["sample", "{nade}", "-n", "2", "--seed", HUGE, "--out", "{out}/s.png"]),
    ("sample-negative-seed", ["sample", "{nade}", "-n", "2", "--seed", "-1", "--out", "{out}/s.png"]),
    ("generate-huge-seed", ["generate", "{tf}", "-n", "3", "--seed", HUGE]),
    ("eval-huge-seed-vae", ["eval", "{vae}", "--data", "digits", "-n", "4", "--k", "2", "--seed", HUGE]),
    ("generate-temperature-inf", ["generate", "{tf}", "-n", "3", "--temperature", "inf"]),
    (
        "bn-query-evidence-twice",
        ["bn", "query", ASIA, "--target", "lung", "--evidence", "smoke=yes,smoke=no"],
    ),
    ("bn-query-target-observed", ["bn", "query", ASIA, "--target", "smoke", "--evidence", "smoke=yes"]),
    (
        "sample-method-generic-vae",
        ["sample", "{vae}", "-n", "2", "--method", "generic", "--out", "{out}/s.png"],
    ),
    ("sample-out-new-parents", ["sample", "{nade}", "-n", "2", "--out", "{out}/a/b/c/s.png"]),
]


@pytest.mark.parametrize(("case", "argv"), EITHER, ids=[c for c, _ in EITHER])
def test_cli_refuses_or_answers(ws, case, argv) -> None:
    assert_refused_or_ok(ws.cli(*fill(ws, argv)))


# -- correct answers -----------------------------------------------------------------------------
def test_sample_csv_is_binary_codes(ws) -> None:
    r = ws.cli("sample", ws.model("nade"), "-n", "3", "--out", ws.out / "s.csv")
    assert_ok(r)
    rows = [line.split(",") for line in (ws.out / "s.csv").read_text().split()]
    body = [row for row in rows if all(c.strip().lstrip("-").isdigit() for c in row)]
    assert len(body) == 3 and all(len(row) == 64 and set(row) <= {"0", "1"} for row in body)


def test_generate_zero_tokens_echoes_prompt(ws) -> None:
    r = ws.cli("generate", ws.model("tf"), "-n", "0", "--prompt", "ab a")
    assert_ok(r)
    assert r.stdout.strip() == "ab a"


def test_generate_tiny_temperature_is_greedy_or_refused(ws) -> None:
    """1e-40 used to return token 0 every time: it must act as greedy (temperature 0) or be refused."""
    tf = ws.model("tf")
    tiny = ws.cli("generate", tf, "-n", "12", "--temperature", "1e-40", "--prompt", "b")
    if tiny.code != 0:
        assert_one_line_error(tiny)
        return
    greedy = ws.cli("generate", tf, "-n", "12", "--temperature", "0", "--prompt", "b")
    assert_ok(greedy)
    assert tiny.stdout == greedy.stdout


def test_eval_prints_finite_json(ws) -> None:
    r = ws.cli("eval", ws.model("nade"), "--data", "digits", "-n", "5")
    assert_ok(r)
    result = json.loads(r.stdout.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(c))
    assert result


def test_kl_of_a_network_with_itself_is_zero(ws) -> None:
    r = ws.cli("kl", ASIA, ASIA)
    assert_ok(r)
    values = [v for v in json.loads(r.stdout.strip().splitlines()[-1]).values() if isinstance(v, float)]
    assert values and abs(values[0]) < 1e-9


def test_no_command_prints_help(ws) -> None:
    r = ws.cli()
    assert r.code == 0 and r.raised is None and "usage" in r.stdout.lower()
