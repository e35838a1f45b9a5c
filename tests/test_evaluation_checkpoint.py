"""Resumable evaluation (`evaluate_nll(..., checkpoint=FILE)`, `chainrule eval --checkpoint`): a run
killed between batches and run again with its checkpoint reports exactly what an uninterrupted run
reports (for a VAE too, whose importance samples continue the same random stream), and a file of
another evaluation, or an unreadable one, is refused with one line."""

from __future__ import annotations

import json

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.evaluation import evaluate, evaluate_nll
from chainrule.models import MODEL_REGISTRY, build_model
from tests.conftest import randomize


class Killed(Exception):
    """Stands for the process being killed in the middle of an evaluation."""


def killed_after(model, batches: int):
    """Make `model.log_prob` fail on call number `batches` + 1; returns the list of calls made."""
    calls, original = [], model.log_prob

    def log_prob(x, **kwargs):
        calls.append(len(x))
        if len(calls) > batches:
            raise Killed
        return original(x, **kwargs)

    model.log_prob = log_prob
    return calls


def binary_data(n: int = 11, dim: int = 4) -> torch.Tensor:
    return torch.randint(0, 2, (n, dim), generator=torch.Generator().manual_seed(0)).float()


@pytest.mark.parametrize("name", ["made", "deep-nade", "vae"])
def test_a_killed_evaluation_resumes_to_the_uninterrupted_result(name: str, tmp_path) -> None:
    x = binary_data()
    options = {"k": 7} if name == "vae" else {}

    def run(model, **extra):
        if name == "vae":
            extra["generator"] = torch.Generator().manual_seed(3)
        return evaluate_nll(model, x, batch_size=3, **options, **extra)

    model = randomize(build_model(name, **build_model_config(name)), seed=1)
    whole = run(model)
    file = tmp_path / "eval.safetensors"
    calls = killed_after(model, 2)
    with pytest.raises(Killed):
        run(model, checkpoint=file)
    assert calls == [3, 3, 3]
    del model.log_prob  # the process restarts: the class's log_prob again
    calls = []
    original = model.log_prob
    model.log_prob = lambda v, **kw: calls.append(len(v)) or original(v, **kw)
    resumed = run(model, checkpoint=file)
    assert calls == [3, 2]  # only the batches after the two saved ones
    assert resumed == whole
    calls.clear()
    assert run(model, checkpoint=file) == whole and calls == []  # a finished file: no work


def build_model_config(name: str) -> dict:
    return {"made": {"dim": 4, "hidden": [8]}, "deep-nade": {"dim": 4, "hidden": 6}, "vae": {"dim": 4}}[name]


def test_a_checkpoint_of_another_evaluation_is_refused(tmp_path) -> None:
    x = binary_data()
    model = randomize(build_model("made", dim=4, hidden=[8]), seed=1)
    file = tmp_path / "eval.safetensors"
    evaluate_nll(model, x, batch_size=3, checkpoint=file)
    for other in (
        lambda: evaluate_nll(model, x, batch_size=4, checkpoint=file),
        lambda: evaluate_nll(model, x[:-1], batch_size=3, checkpoint=file),
        lambda: evaluate_nll(randomize(model, seed=2), x, batch_size=3, checkpoint=file),
    ):
        with pytest.raises(ChainruleError, match="belongs to another evaluation"):
            other()
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(ChainruleError, match="not readable"):
        evaluate_nll(model, x, batch_size=3, checkpoint=file)


def test_eval_command_takes_a_checkpoint(tmp_path, capsys) -> None:
    from chainrule.cli import main
    from chainrule.persistence import save

    model = build_model("deep-rnade", dim=2, hidden=6, components=2, num_orderings=3, seed=1)
    save(model, tmp_path / "m")
    args = ["eval", str(tmp_path / "m"), "--data", "faithful", "--batch-size", "50"]
    assert main(args) == 0
    want = json.loads(capsys.readouterr().out)["nll_nats"]
    file = tmp_path / "eval.safetensors"
    for _ in range(2):  # the second run reads every batch from the file
        assert main([*args, "--checkpoint", str(file)]) == 0
        assert json.loads(capsys.readouterr().out)["nll_nats"] == want
    assert file.exists()


def test_eval_command_refuses_a_folder_or_a_text_stream_as_checkpoint(tmp_path, capsys) -> None:
    """A folder given as the checkpoint file, or a checkpoint for a token stream, is one error line."""
    from chainrule.cli import main
    from chainrule.persistence import save

    model = build_model("deep-rnade", dim=2, hidden=6, components=2, num_orderings=3, seed=1)
    save(model, tmp_path / "m")
    assert main(["eval", str(tmp_path / "m"), "--data", "faithful", "--checkpoint", str(tmp_path)]) == 2
    assert "not readable" in capsys.readouterr().err
    lstm = build_model("char-rnn", **MODEL_REGISTRY["char-rnn"].tiny_config())
    with pytest.raises(ChainruleError, match="array data"):
        evaluate(lstm, "tiny-shakespeare", checkpoint=tmp_path / "c.safetensors")


def test_a_resumed_evaluations_progress_bar_starts_where_it_stopped(tmp_path, capsys) -> None:
    """The bar counts the batches saved before the restart: 2 of 4 done shows 2/4, not 0/2."""
    x = binary_data(n=11)
    model = randomize(build_model("made", **build_model_config("made")), seed=1)
    file = tmp_path / "eval.safetensors"
    killed_after(model, 2)
    with pytest.raises(Killed):
        evaluate_nll(model, x, batch_size=3, checkpoint=file)
    del model.log_prob
    capsys.readouterr()
    evaluate_nll(model, x, batch_size=3, checkpoint=file, progress=True)
    bar = capsys.readouterr().err
    assert "2/4" in bar and "0/2" not in bar
