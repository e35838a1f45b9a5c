"""`python -m benchmarks.compression --only MODEL`: re-measures the named zoo models' rows of the
last results file and keeps every other row; unknown names and a missing file are refused."""

from __future__ import annotations

import json

import pytest
import torch

import benchmarks.compression as bench


@pytest.fixture(autouse=True)
def threads_kept():
    """`main` sets one torch thread for the benchmark; the test process gets its own back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def fake_results(tmp_path) -> None:
    def rows(names: tuple[str, ...]) -> list[dict]:
        models = [{"coder": f"arithmetic + zoo/{n}", "bits_per_unit": 1.0, "decoded": 7} for n in names]
        return [{"coder": "gzip (x)", "bits_per_unit": 9.0}, *models]

    payload = {
        "machine": {"cpu": "old"},
        "images": {"n": 3, "rows": rows(bench.IMAGE_MODELS)},
        "text": {"chars": 50, "rows": rows(bench.TEXT_MODELS)},
    }
    (tmp_path / "compression.json").write_text(json.dumps(payload))


def test_only_the_named_row_is_measured_again(tmp_path, monkeypatch) -> None:
    fake_results(tmp_path)
    written, measured = {}, []
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "write_result", lambda name, payload: written.update({name: payload}))
    monkeypatch.setattr(bench, "load_dataset", lambda name: type("D", (), {"texts": {"test": "ab" * 100}})())

    def model_row(name, data, units, decode):
        measured.append((name, len(data), units, decode))
        return {"coder": f"arithmetic + zoo/{name}", "bits_per_unit": 2.0, "decoded": decode}

    monkeypatch.setattr(bench, "model_row", model_row)
    bench.main(["--only", "transformer-shakespeare"])
    assert measured == [("transformer-shakespeare", 50, 50, 7)]  # the file's sizes, not the defaults
    result = written["compression"]
    assert "machine" not in result  # write_result adds this machine's
    text = {r["coder"]: r for r in result["text"]["rows"]}
    assert text["arithmetic + zoo/transformer-shakespeare"]["bits_per_unit"] == 2.0
    assert "date" in text["arithmetic + zoo/transformer-shakespeare"]
    assert text["arithmetic + zoo/lstm-shakespeare"] == {
        "coder": "arithmetic + zoo/lstm-shakespeare",
        "bits_per_unit": 1.0,
        "decoded": 7,
    }
    assert all(r["bits_per_unit"] in (1.0, 9.0) for r in result["images"]["rows"])


def test_unknown_model_and_missing_file_are_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    with pytest.raises(SystemExit, match="does not exist yet: run the whole benchmark first"):
        bench.main(["--only", "nade-mnist"])
    fake_results(tmp_path)
    with pytest.raises(SystemExit, match=r"unknown model\(s\) \['nade-mnsit'\]"):
        bench.main(["--only", "nade-mnsit"])
