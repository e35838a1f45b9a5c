"""Sequence models: training throughput (tokens/s, achieved FLOP/s as a fraction of a matmul peak
measured in the same run) and cached vs uncached generation of 1,000 new tokens.

Run: `.venv/bin/python -m benchmarks.text_speed` (a few minutes on 2 quiet cores; `--threads 1`
on a busy machine, where two OpenMP threads that wait for each other are slower than one).
Writes benchmarks/results/text_speed.json. The models are the zoo's (trained weights) where
present, else models of the recipes' sizes with random weights: speed does not depend on them.

FLOP counts (multiply-adds x 2) per trained token: Transformer 6·N + 6·L·T·d, with N the matmul
parameters (4d² attention + 8d² MLP per layer, and V·d for the output layer) and 6·L·T·d the
causal attention scores and weighted sums (half of the full T x T products, forward + backward);
LSTM 6·(4h(e + h) + hV) per layer of width h on inputs of width e.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.common import best_time, matmul_peak_gflops, write_result
from chainrule.models import CausalTransformer, CharRNN, SequenceModel, WaveNet
from chainrule.persistence import load
from chainrule.recipes import load_recipe
from chainrule.training import make_adam

ROOT = Path(__file__).resolve().parent.parent
V = 80  # Shakespeare's vocabulary size


def zoo_or_recipe(name: str) -> tuple[SequenceModel, dict, str]:
    """The zoo model `name` if published, else the recipe's model with random weights."""
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    if (ROOT / "zoo" / name / "model.safetensors").is_file():
        return load(ROOT / "zoo" / name), recipe["train"], "zoo (trained)"
    spec = {k: v for k, v in recipe["model"].items() if k != "name"}
    cls = {"transformer": CausalTransformer, "char-rnn": CharRNN}[recipe["model"]["name"]]
    torch.manual_seed(0)
    return cls(V, **spec), recipe["train"], "recipe size, random weights"


def transformer_flops_per_token(m: CausalTransformer, T: int) -> float:
    d, L = m.embedding.embedding_dim, len(m.blocks)
    n_matmul = L * 12 * d * d + m.num_values * d
    return 6 * n_matmul + 6 * L * T * d


def lstm_flops_per_token(m: CharRNN) -> float:
    e, h, layers = m.embedding.embedding_dim, m.rnn.hidden_size, m.rnn.num_layers
    per_layer = [4 * h * (e + h)] + [4 * h * (h + h)] * (layers - 1)
    return 6 * (sum(per_layer) + h * m.num_values)


def train_tokens_per_s(model: SequenceModel, batch: int, T: int, bf16: bool) -> float:
    """Tokens/s of full training steps (forward, backward, fused Adam) on (batch, T) chunks."""
    model.train()
    opt = make_adam(model.parameters(), lr=1e-5)
    x = torch.randint(0, model.num_values, (batch, T + 1), generator=torch.Generator().manual_seed(0))
    state = model.begin(x[:, :1])

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            lp, _ = model.chunk_log_prob(x[:, 1:], state)
            loss = -lp.float().mean()
        loss.backward()
        opt.step()

    secs = best_time(step, repeats=3, warmup=1)
    model.eval()
    return batch * T / secs


def generation(model: SequenceModel, prompt: torch.Tensor, n_new: int, repeats: int = 2) -> dict:
    """Best-of-`repeats` wall times of cached and uncached generation of `n_new` tokens (same seed
    each time), the two interleaved after a short warm-up so that both see the same machine load,
    and whether both gave the same tokens."""
    out, times = {}, {True: float("inf"), False: float("inf")}
    for cache in (True, False):
        model.generate(prompt, 20, cache=cache)  # warm-up: first-call allocations, kernel choice
    for _ in range(repeats):
        for cache in (True, False):
            t = time.perf_counter()
            g = torch.Generator().manual_seed(0)
            out[cache] = model.generate(prompt, n_new, generator=g, cache=cache)
            times[cache] = min(times[cache], time.perf_counter() - t)
    return {
        "new_tokens": n_new,
        "prompt_tokens": int(prompt.numel()),
        "threads": torch.get_num_threads(),
        "cached_s": times[True],
        "uncached_s": times[False],
        "speedup": times[False] / times[True],
        "cached_tokens_per_s": n_new / times[True],
        "identical_tokens": bool(torch.equal(out[True], out[False])),
        "repeats": repeats,
    }


def main(n_new: int = 1000) -> dict:
    peaks = {"fp32": matmul_peak_gflops(torch.float32), "bf16": matmul_peak_gflops(torch.bfloat16)}
    result: dict = {"training": [], "generation": {}}
    models, rows = {}, []
    for name in ("transformer-shakespeare", "lstm-shakespeare"):
        model, train, source = zoo_or_recipe(name)
        models[name] = model
        T = train.get("seq_len") or getattr(model, "block_size", 128)
        B = train["batch_size"]
        flops = (
            transformer_flops_per_token(model, T)
            if name.startswith("transformer")
            else lstm_flops_per_token(model)
        )
        for bf16 in (True, False):
            tps = train_tokens_per_s(model, B, T, bf16)
            rows.append(
                {
                    "model": name,
                    "weights": source,
                    "parameters": model.num_parameters(),
                    "batch": B,
                    "seq_len": T,
                    "precision": "bf16-mixed" if bf16 else "fp32",
                    "tokens_per_s": tps,
                    "flops_per_token": flops,
                    "gflops": tps * flops / 1e9,
                }
            )
            print(f"train {name:24s} {rows[-1]['precision']:10s}: {tps:7.0f} tokens/s", flush=True)
    # the peak is the best of measurements before and after the training ones (the machine is
    # shared: the best time is the one least disturbed, as for the training steps themselves)
    peaks = {
        p: max(peaks[p], matmul_peak_gflops(d))
        for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    result["matmul_peak_gflops"] = peaks
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)
    for row in rows:
        row["fraction_of_peak"] = (
            row["gflops"] / peaks["bf16" if row["precision"] == "bf16-mixed" else "fp32"]
        )
        result["training"].append(row)
        print(
            f"train {row['model']:24s} {row['precision']:10s}: {row['tokens_per_s']:7.0f} tokens/s"
            f" {row['gflops']:6.1f} GFLOP/s = {row['fraction_of_peak']:.2f} of peak",
            flush=True,
        )
    torch.manual_seed(0)
    wavenet = WaveNet(V, channels=64, skip_channels=128)  # the default 2 x (1..256) stack, R = 1,023
    gen_models = {**models, "wavenet (random weights)": wavenet.eval()}
    for name, model in gen_models.items():
        prompt = model.encode("ROMEO:") if model.tokenizer is not None else torch.tensor([1, 2, 3, 4, 5, 6])
        g = generation(model, prompt, n_new)
        result["generation"][name] = g
        print(
            f"generate {name:24s}: cached {g['cached_s']:.2f}s uncached {g['uncached_s']:.2f}s"
            f" speed-up {g['speedup']:.1f}x identical={g['identical_tokens']}",
            flush=True,
        )
    # the cached step moves all weights for one token (memory- and overhead-bound), the uncached
    # one computes a whole window (compute-bound): also measure both with one thread
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        g = generation(
            models["transformer-shakespeare"], models["transformer-shakespeare"].encode("ROMEO:"), n_new
        )
        torch.set_num_threads(threads)
        result["generation_one_thread"] = {"transformer-shakespeare": g}
        print(
            f"generate transformer, 1 thread: speed-up {g['speedup']:.1f}x identical={g['identical_tokens']}"
        )
    result["notes"] = __doc__.split("FLOP counts")[1].strip()
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("-n", type=int, default=1000, help="new tokens per generation (default 1000)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = main(args.n)
    print("wrote", write_result("text_speed", out))
