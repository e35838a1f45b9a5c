"""`chainrule` command line: train, eval, sample, complete, score, generate, demo, datasets, data,
bench, bn, classifier, defend."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chainrule.errors import ChainruleError

EPILOG = """examples:
  chainrule demo                                   # 2-minute demo on the embedded 8x8 digits
  chainrule train recipes/nade-mnist.yaml train.max_epochs=5
  chainrule train recipes/nade-mnist.yaml --resume # continue a killed run
  chainrule train recipes/made-mnist.yaml --devices 2          # DDP, 2 processes (docs/distributed.md)
  chainrule data synth /tmp/big --n 2000000        # 1.6 GB memory-mapped dataset
  chainrule train recipes/made-mnist.yaml --data mmap:/tmp/big
  chainrule bench                                  # benchmark suite -> benchmarks/results/*.json
  chainrule eval zoo/nade-mnist --data binarized-mnist --split test
  chainrule sample zoo/nade-mnist -n 64 --seed 0 --out grid.png
  chainrule complete zoo/gated-pixelcnn-mnist --data binarized-mnist --mask bottom-half
  chainrule complete runs/gated-pixelcnn-mnist-superres/model --data binarized-mnist --superres
  chainrule score zoo/nade-mnist --data binarized-mnist --ood-data binarized-fashion-mnist -n 2000
  chainrule train recipes/csv.yaml data.name=csv:my-data.csv --out runs/my-data
  chainrule sample runs/my-data/model -n 100 --out samples.csv
  chainrule train recipes/transformer-shakespeare.yaml
  chainrule eval zoo/transformer-shakespeare --data shakespeare    # nats/char and bits/char
  chainrule generate zoo/transformer-shakespeare --prompt "ROMEO:" -n 500 --seed 0
  chainrule bn query tests/data/bif/asia.bif.gz --target lung --evidence smoke=yes,xray=yes
  chainrule classifier train --data fashion-mnist --out runs/cnn-fashion
  chainrule classifier eval runs/gated-pixelcnn-mnist-classes/model --data binarized-mnist  # Bayes rule
  chainrule defend runs/gated-pixelcnn-fashion/model --classifier runs/cnn-fashion --data fashion-mnist
"""


class ExamplesFormatter(argparse.HelpFormatter):
    """Help text wrapped to the terminal like argparse's default, except text with line breaks of its
    own (the examples of an epilog), which keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chainrule",
        description="Likelihood-based generative models: train by maximum likelihood, evaluate"
        " exact log-likelihoods, sample and complete.",
        epilog=EPILOG,
        formatter_class=ExamplesFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a model from a recipe YAML",
        description="Train by maximum likelihood. Overrides look like train.lr=3e-4 or model.hidden=1000.",
    )
    t.add_argument("recipe", help="recipe YAML (see recipes/)")
    t.add_argument("overrides", nargs="*", help="section.key=value overrides")
    t.add_argument("--out", help="output folder (default: the recipe's `out`, else runs/<recipe>)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    t.add_argument("--no-test", action="store_true", help="skip the test-set evaluation at the end")
    t.add_argument(
        "--data", help="dataset instead of the recipe's: a name, csv:PATH, mmap:PATH, text:PATH or wav:PATH"
    )
    t.add_argument("--devices", type=int, help="processes (CPU) or GPUs per node (train.devices)")
    t.add_argument("--num-nodes", type=int, help="machines (train.num_nodes); see docs/distributed.md")
    t.add_argument("--accelerator", choices=["cpu", "gpu", "auto"], help="train.accelerator")
    t.add_argument("--strategy", choices=["auto", "ddp", "ddp_spawn", "ddp_fork"], help="train.strategy")
    t.add_argument("--compile", action="store_true", help="torch.compile the training step (train.compile)")

    e = sub.add_parser("eval", help="NLL of a saved model on a dataset split (one JSON line)")
    e.add_argument("model_dir")
    e.add_argument(
        "--data", required=True, help="dataset name (chainrule datasets lists them), text:PATH or wav:PATH"
    )
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--batch-size", type=int, default=1000)
    e.add_argument("--masks", type=int, default=None, help="MADE: number of masks in the ensemble")
    e.add_argument(
        "--k",
        type=int,
        default=None,
        help="VAE: importance samples per example (default 1000; 1 = a one-sample ELBO)",
    )
    e.add_argument("--seed", type=int, default=0, help="VAE: seed of the importance samples")

    s = sub.add_parser(
        "sample",
        help="draw samples from a saved model into a PNG grid or a CSV file",
        description="Draw samples. OUT ending in .csv gets one row per sample (integer codes, or"
        " real values for continuous models; with the training file's header when there is one);"
        " anything else gets a PNG grid of images.",
    )
    s.add_argument("model_dir")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png", help="PNG or .csv path (default samples.png)")
    s.add_argument(
        "--method", default="fast", choices=["fast", "generic"], help="sampler of autoregressive models"
    )
    s.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="class-conditional models: this many samples of every class, one row per class"
        " (default 8; -n is then ignored)",
    )

    c = sub.add_parser(
        "complete",
        help="inpaint or super-resolve test images; write a picture",
        description="Complete images from a model's conditionals. Each row of the picture shows an"
        " original image, the masked input (missing pixels grey) and --samples completions. Masks:"
        " bottom-half, top-half, left-half, right-half, random:P (each pixel missing with"
        " probability P), or PATH.png (white = missing). Prints log p(missing | observed) per image"
        " when it is exact (a raster model with the bottom missing). With --superres and a"
        " super-resolution model (GatedPixelCNN with lowres_factor f), each row shows the original,"
        " its low-resolution version (1/f of the size, drawn blocky at full size) and --samples"
        " high-resolution draws given it; prints the exact conditional NLL log p(x | low-res x) in"
        " nats and bits/dim.",
        epilog="examples:\n"
        "  chainrule complete zoo/gated-pixelcnn-mnist --data binarized-mnist --mask bottom-half\n"
        "  chainrule complete runs/gated-pixelcnn-mnist-superres/model --data binarized-mnist --superres"
        " -n 8 --samples 4 --out superres.png",
        formatter_class=ExamplesFormatter,
    )
    c.add_argument("model_dir")
    c.add_argument("--data", required=True, help="dataset whose images to complete")
    c.add_argument("--split", default="test", choices=["train", "val", "test"])
    c.add_argument("--mask", default=None, help="which pixels are missing (default bottom-half)")
    c.add_argument(
        "--superres",
        action="store_true",
        help="super-resolution instead of a mask: sample images given their low-resolution versions"
        " (needs a model built with lowres_factor)",
    )
    c.add_argument("-n", type=int, default=8, help="number of images (default 8)")
    c.add_argument("--samples", type=int, default=3, help="completions per image (default 3)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="completions.png", help="PNG path (default completions.png)")

    sc = sub.add_parser(
        "score",
        help="out-of-distribution detection: score in-distribution vs OOD data; table and histograms",
        description="Score the test images of --data (in-distribution) and of --ood-data with every OOD"
        " score (higher = more anomalous): negative log-likelihood, bits/dim, likelihood ratio against"
        " --background (a model trained with train.perturb_rate), input complexity (NLL in bits minus"
        " a lossless compressor's bits) and typicality (|NLL - mean NLL of --data's validation"
        " split|, its training split when --split val). Prints a table of AUROC, AUPR and FPR at"
        " 95 % TPR (OOD = positive) to stderr, one JSON line to stdout, and writes a PNG of the"
        " score histograms.",
    )
    sc.add_argument("model_dir")
    sc.add_argument("--data", required=True, help="the model's own (in-distribution) dataset")
    sc.add_argument("--ood-data", required=True, help="the out-of-distribution dataset")
    sc.add_argument("--background", help="background model folder, for the likelihood-ratio score")
    sc.add_argument("--split", default="test", choices=["train", "val", "test"], help="(default test)")
    sc.add_argument("-n", type=int, default=None, help="use the first N images of each split (default all)")
    sc.add_argument("--out", default="ood-scores.png", help="histogram PNG path (default ood-scores.png)")
    sc.add_argument(
        "--compressor",
        default="best",
        choices=["best", "png", "zlib", "bz2", "lzma"],
        help="lossless compressor of the input-complexity score (default best: the shortest per image)",
    )
    sc.add_argument("--batch-size", type=int, default=500)
    sc.add_argument("--k", type=int, default=None, help="VAE: importance samples per example (default 1000)")
    sc.add_argument("--seed", type=int, default=0, help="VAE: seed of the importance samples")

    g = sub.add_parser(
        "generate",
        help="generate text (or mu-law audio) from a sequence model",
        description="Sample a continuation of --prompt from a char-RNN, Transformer or WaveNet. The"
        " text (prompt + continuation) goes to stdout, timing to stderr. -n 0 prints the prompt"
        " unchanged; a prompt character outside the model's vocabulary is an error.",
    )
    g.add_argument("model_dir")
    g.add_argument("--prompt", default="", help="text to continue (default: start from nothing)")
    g.add_argument("-n", type=int, default=500, help="number of new tokens (default 500)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1)")
    g.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    g.add_argument("--top-p", type=float, default=None, help="keep the smallest set of mass >= p")
    g.add_argument("--samples", type=int, default=1, help="number of continuations (default 1)")
    g.add_argument("--no-cache", action="store_true", help="reference sampler: a full pass per token")
    g.add_argument("--out", help="write to this file instead of stdout (audio models: a .wav)")

    d = sub.add_parser("demo", help="train a small NADE on the embedded 8x8 digits; write samples")
    d.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    d.add_argument("--epochs", type=int, default=60)

    sub.add_parser("datasets", help="list the named datasets (or use csv:PATH for your own file)")

    da = sub.add_parser(
        "data",
        help="on-disk (memory-mapped) array datasets: synth, export, info",
        description="Array datasets: uint8 .npy shards + meta.json, read lazily; train on one with"
        " --data mmap:PATH.",
    )
    dsub = da.add_subparsers(dest="data_command", metavar="ACTION")
    dsy = dsub.add_parser("synth", help="write N synthetic 28x28 digit images (dynamic binarization)")
    dsy.add_argument("path", help="new folder")
    dsy.add_argument("--n", type=int, default=2_000_000, help="training images (default 2,000,000 = 1.57 GB)")
    dsy.add_argument("--val", type=int, default=10_000, help="validation images (default 10,000)")
    dsy.add_argument("--test", type=int, default=10_000, help="test images (default 10,000)")
    dsy.add_argument("--seed", type=int, default=0)
    dsy.add_argument(
        "--shard-rows", type=int, default=1 << 20, help="rows per .npy shard (default 1,048,576)"
    )
    dex = dsub.add_parser("export", help="write a named dataset in the array format")
    dex.add_argument("name", help="dataset name (chainrule datasets lists them)")
    dex.add_argument("path", help="new folder")
    dex.add_argument("--shard-rows", type=int, default=1 << 20)
    din = dsub.add_parser("info", help="describe an array dataset folder")
    din.add_argument("path")

    be = sub.add_parser(
        "bench",
        help="run the benchmark suite; write benchmarks/results/*.json",
        description="Training throughput, achieved FLOP/s vs a matmul peak measured in the same run,"
        " peak memory, fast-vs-generic sampling, all-reduce cost and a 1-64 GPU scaling estimate."
        " The default settings finish in a few minutes on 2 CPU cores.",
    )
    be.add_argument("--full", action="store_true", help="larger batches and models (slower)")
    be.add_argument("--compile", action="store_true", help="also time torch.compile'd training steps")
    be.add_argument(
        "--only", default="", help="comma-separated parts: training,sampling,allreduce,scaling,mmap"
    )
    be.add_argument("--out", default="benchmarks/results", help="folder for the JSON files")
    be.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: comparable on shared machines; the training part also times"
        " one thread per core)",
    )

    b = sub.add_parser(
        "bn",
        help="Bayesian networks from BIF files: info, query, sample",
        description="Discrete Bayesian networks read from BIF files (.bif or .bif.gz, bnlearn format).",
    )
    bsub = b.add_subparsers(dest="bn_command", metavar="ACTION")
    bi = bsub.add_parser("info", help="nodes, edges and free parameters (vs full joint, independent)")
    bi.add_argument("bif", help="BIF file")
    bq = bsub.add_parser("query", help="exact P(targets | evidence) by variable elimination, as JSON")
    bq.add_argument("bif", help="BIF file")
    bq.add_argument("--target", required=True, help="target variable(s): X or X,Y")
    bq.add_argument("--evidence", default="", help="observed states: A=a,B=b (default: none)")
    bs = bsub.add_parser("sample", help="ancestral samples to a CSV file (state names, header row)")
    bs.add_argument("bif", help="BIF file")
    bs.add_argument("-n", type=int, default=1000, help="number of samples (default 1000)")
    bs.add_argument("--seed", type=int, default=0)
    bs.add_argument("--out", required=True, help="CSV path")
    bs.add_argument(
        "--codes",
        action="store_true",
        help="write state indices 0..k-1 instead of state names (what --data csv:PATH reads)",
    )
    _defend_parsers(sub)
    return p


def _defend_parsers(sub) -> None:
    """`chainrule classifier ...` and `chainrule defend ...` (PixelDefend, issue 8)."""
    cl = sub.add_parser(
        "classifier",
        help="image classifiers: train a CNN; eval a CNN or a class-conditional model (Bayes rule)",
        description="A small convolutional classifier of labelled image datasets (the classifier that"
        " `chainrule defend` attacks and protects). `train` fits it with Adam on cross-entropy under"
        " Lightning (progress bar, seeded, early stopping on validation accuracy) and writes"
        " OUT/model.safetensors + OUT/config.json (with the test accuracy) and OUT/logs; `eval` prints"
        " the accuracy of a saved classifier on a split. `eval` also takes a saved class-conditional"
        " chainrule model (e.g. GatedPixelCNN with num_classes): a generative classifier, p(y | x)"
        " proportional to p(x | y) p(y) with the prior p(y) counted from the training split's labels;"
        " it prints the accuracy, the mean NLL -log p(x | true class), the marginal NLL and the prior"
        " (K likelihood passes over the split: a progress bar shows them).",
        epilog="examples:\n  chainrule classifier train --data fashion-mnist --out runs/cnn-fashion\n"
        "  chainrule classifier eval runs/cnn-fashion --data fashion-mnist --split test\n"
        "  chainrule classifier eval runs/gated-pixelcnn-mnist-classes/model --data binarized-mnist -n 1000",
        formatter_class=ExamplesFormatter,
    )
    csub = cl.add_subparsers(dest="classifier_command", metavar="ACTION")
    ct = csub.add_parser("train", help="train a CNN classifier on a labelled image dataset")
    ct.add_argument("--data", required=True, help="labelled image dataset, e.g. fashion-mnist or digits")
    ct.add_argument("--out", required=True, help="new folder for the classifier (e.g. runs/cnn-fashion)")
    ct.add_argument("--epochs", type=int, default=10, help="most epochs (default 10)")
    ct.add_argument("--patience", type=int, default=2, help="epochs without better val accuracy (default 2)")
    ct.add_argument("--batch-size", type=int, default=128)
    ct.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    ct.add_argument(
        "--channels", default="32,64", help="conv channels: one 3x3 conv + 2x2 max-pool each (default 32,64)"
    )
    ct.add_argument("--hidden", type=int, default=128, help="hidden units before the output (default 128)")
    ct.add_argument("--dropout", type=float, default=0.25)
    ct.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    ct.add_argument("--seed", type=int, default=0)
    ce = csub.add_parser(
        "eval", help="accuracy of a saved CNN classifier or class-conditional model on a dataset split"
    )
    ce.add_argument("classifier_dir", help="a `classifier train` folder or a class-conditional model folder")
    ce.add_argument("--data", required=True)
    ce.add_argument("--split", default="test", choices=["train", "val", "test"])
    ce.add_argument("-n", type=int, default=None, help="use the first N images of the split (default all)")
    ce.add_argument(
        "--batch-size", type=int, default=500, help="class-conditional models: images per pass (default 500)"
    )

    de = sub.add_parser(
        "defend",
        help="PixelDefend: attack a classifier (FGSM, PGD), detect by likelihood rank, purify",
        description="Attack --classifier on the first -n images of --data's split with FGSM and/or PGD"
        " (L-infinity, eps on the [0, 1] pixel scale, results rounded to the 256 levels); detect the"
        " attacks by the p-value of each image's likelihood rank among --reference training images"
        " (Song et al. 2018); purify clean and attacked images by greedy decoding with MODEL_DIR (an"
        " autoregressive model of the same 8-bit images) inside a --defend-eps ball. Prints the table"
        " (accuracy clean / attacked / purified, detection AUROC) to stderr and as JSON to stdout, and"
        " writes a picture of clean, attacked and purified examples with the classifier's labels.",
        epilog="example:\n  chainrule defend runs/gated-pixelcnn-fashion/model --classifier runs/cnn-fashion"
        " \\\n      --data fashion-mnist --attack both --eps 8/255,16/255 --defend-eps 16/255 -n 200",
        formatter_class=ExamplesFormatter,
    )
    de.add_argument("model_dir", help="autoregressive density model of the images (the purifier)")
    de.add_argument("--classifier", required=True, help="classifier folder (chainrule classifier train)")
    de.add_argument("--data", required=True, help="labelled 8-bit image dataset, e.g. fashion-mnist")
    de.add_argument("--split", default="test", choices=["train", "val", "test"], help="(default test)")
    de.add_argument("--attack", default="both", choices=["fgsm", "pgd", "both"], help="(default both)")
    de.add_argument(
        "--eps", default="8/255,16/255", help="attack eps list, fractions allowed (default 8/255,16/255)"
    )
    de.add_argument("--defend-eps", default="16/255", help="purification eps_def (default 16/255)")
    de.add_argument("-n", type=int, default=200, help="number of images (default 200)")
    de.add_argument(
        "--reference", type=int, default=2000, help="training images the p-values rank against (default 2000)"
    )
    de.add_argument("--pgd-steps", type=int, default=10, help="PGD iterations (default 10)")
    de.add_argument(
        "--pgd-step-size", default=None, help="PGD step on the [0, 1] scale (default 2.5 eps / steps)"
    )
    de.add_argument("--batch-size", type=int, default=100)
    de.add_argument("--show", type=int, default=6, help="examples in the picture (default 6)")
    de.add_argument("--seed", type=int, default=0, help="PGD random start")
    de.add_argument("--out", default="defend.png", help="PNG path (default defend.png)")


def _evaluation_device(accelerator: str) -> str:
    """Where `chainrule train` computes the test NLL: "cuda" when training used a GPU (accelerator
    gpu/cuda, or auto with CUDA available), else "cpu"."""
    import torch

    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if on_gpu else "cpu"


def cmd_train(args) -> dict:
    from chainrule.data import SequenceDataset
    from chainrule.evaluate import evaluate_nll, evaluate_sequence, split_condition
    from chainrule.persistence import atomic_write_json
    from chainrule.recipes import build_from_recipe, load_recipe
    from chainrule.training import fit

    flags = {
        "data.name": args.data,
        "train.devices": args.devices,
        "train.num_nodes": args.num_nodes,
        "train.accelerator": args.accelerator,
        "train.strategy": args.strategy,
        "train.compile": True if args.compile else None,
    }
    overrides = [*args.overrides, *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    recipe = load_recipe(args.recipe, overrides)
    out = Path(args.out or recipe.get("out") or f"runs/{Path(args.recipe).stem}")
    model, dataset, config = build_from_recipe(recipe)
    extra = {"recipe": recipe}
    if getattr(dataset, "sample_rate", None):
        extra["sample_rate"] = dataset.sample_rate
    result = fit(model, dataset, config, out, resume=args.resume, extra_metadata=extra)
    if not result.is_main:
        return None  # another process of a distributed run: rank 0 reports
    metrics = {
        "model": model.registry_name,
        "dataset": dataset.name,
        "best_val_nll": result.best_val_nll,
        "epochs": result.epochs,
        "train_seconds": round(result.train_seconds, 1),
        "num_parameters": model.num_parameters(),
    }
    # Lightning hands the model back on the CPU; test it where it trained (minutes saved on a GPU)
    model.to(_evaluation_device(config.accelerator))
    try:
        if not args.no_test and isinstance(dataset, SequenceDataset):
            metrics["test"] = evaluate_sequence(model, dataset.test, unit=dataset.unit).as_dict()
        elif not args.no_test:
            kwargs = recipe.get("evaluate") or {}
            for name, kw in ({"test": {}} | kwargs).items():
                rep = evaluate_nll(model, dataset.test, cond=split_condition(model, dataset, "test"), **kw)
                metrics[name] = rep.as_dict()
    finally:
        model.cpu()
    atomic_write_json(out / "model" / "metrics.json", metrics)
    return metrics


def eval_sequence_model(model, args) -> dict:
    """nats and bits per character (or per audio sample) of a whole split, every token once."""
    from chainrule.data import load_dataset
    from chainrule.data.text import text_file
    from chainrule.evaluate import evaluate_sequence

    if args.data.startswith("text:"):  # encode with the model's vocabulary, not the file's own
        if model.tokenizer is None:
            raise ChainruleError(f"{args.model_dir} models audio, not text")
        data = text_file(args.data[5:], tokenizer=model.tokenizer)
    else:
        data = load_dataset(args.data)
    if not hasattr(data, "encoded"):
        raise ChainruleError(f"{args.model_dir} models sequences; dataset {args.data!r} is not text or audio")
    if (data.tokenizer is None) != (model.tokenizer is None):
        kinds = ("audio", "text")
        raise ChainruleError(
            f"{args.model_dir} models {kinds[model.tokenizer is not None]} but {args.data!r} is"
            f" {kinds[data.tokenizer is not None]}"
        )
    x = data.encoded(args.split, model.tokenizer)
    t = time.time()
    rep = evaluate_sequence(model, x, unit=data.unit).as_dict()
    return {
        "model_dir": args.model_dir,
        "data": args.data,
        "split": args.split,
        **rep,
        "seconds": round(time.time() - t, 2),
    }


def cmd_eval(args) -> dict:
    from chainrule.data import SequenceDataset, load_dataset
    from chainrule.evaluate import evaluate_nll, split_condition
    from chainrule.models import SequenceModel
    from chainrule.persistence import load

    model = load(args.model_dir)
    if isinstance(model, SequenceModel):
        return eval_sequence_model(model, args)
    data = load_dataset(args.data)
    if isinstance(data, SequenceDataset):
        raise ChainruleError(f"dataset {args.data!r} holds sequences; {args.model_dir} does not model them")
    x = data.split(args.split)
    if x.shape[1] != model.event_shape[0]:
        raise ChainruleError(
            f"dataset {args.data!r} has {x.shape[1]} dimensions but the model expects {model.event_shape[0]}"
        )
    kwargs = {"num_masks": args.masks} if args.masks else {}
    kwargs.update(_latent_kwargs(model, args))
    t = time.time()
    cond = split_condition(model, data, args.split)
    rep = evaluate_nll(model, x, batch_size=args.batch_size, cond=cond, **kwargs).as_dict()
    return {
        "model_dir": args.model_dir,
        "data": args.data,
        "split": args.split,
        **rep,
        "seconds": round(time.time() - t, 2),
    }


def _latent_kwargs(model, args) -> dict:
    """log_prob options for `--k`/`--seed`: a latent-variable model's importance estimate is seeded;
    `--k` on any other model is an error."""
    import torch

    if hasattr(model, "importance_log_prob"):
        kwargs: dict = {"generator": torch.Generator().manual_seed(args.seed)}
        if args.k is not None:
            kwargs["k"] = args.k
        return kwargs
    if args.k is not None:
        raise ChainruleError(f"--k applies to latent-variable models (VAE), not {model.registry_name!r}")
    return {}


def cmd_sample(args) -> dict:
    import torch

    from chainrule.data.csv_file import write_csv_codes
    from chainrule.models import SequenceModel
    from chainrule.persistence import load, read_config
    from chainrule.report import image_grid

    model = load(args.model_dir)
    if args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    if isinstance(model, SequenceModel):
        raise ChainruleError(f"{args.model_dir} is a sequence model: use `chainrule generate`")
    to_csv = args.out.lower().endswith(".csv")
    shape = getattr(model, "image_shape", None)
    if shape is None and not to_csv:
        raise ChainruleError("this model has no image_shape, so it cannot draw a grid; use --out FILE.csv")
    g = torch.Generator().manual_seed(args.seed)
    t = time.time()
    from chainrule.models import AutoregressiveModel

    kwargs = {"method": args.method} if isinstance(model, AutoregressiveModel) else {}
    ncols = None
    if model.class_conditional:
        per_class = args.per_class or 8
        if per_class < 1:
            raise ChainruleError(f"--per-class must be at least 1, got {per_class}")
        kwargs["cond"] = torch.arange(model.num_classes).repeat_interleave(per_class)
        args.n, ncols = len(kwargs["cond"]), per_class
    elif args.per_class is not None:
        raise ChainruleError(f"--per-class needs a class-conditional model; {args.model_dir} is not one")
    x = model.sample(args.n, generator=g, **kwargs)
    secs = time.time() - t
    if to_csv:
        columns = read_config(args.model_dir).get("training", {}).get("columns")
        write_csv_codes(args.out, x, columns, real=model.value_type == "continuous")
        return {"out": args.out, "n": args.n, "seconds": round(secs, 3)}
    image_grid(
        x,
        shape,
        args.out,
        num_values=model.num_values,
        ncols=ncols,
        title=f"{model.registry_name}: {args.n} samples, seed {args.seed}"
        + (", one row per class" if ncols else ""),
    )
    return {"out": args.out, "n": args.n, "seconds": round(secs, 3)}


def _images_for(model, args):
    """The first -n images of the --data split, checked against the model's image shape."""
    import torch

    from chainrule.data import SequenceDataset, load_dataset

    data = load_dataset(args.data)
    if isinstance(data, SequenceDataset) or not data.image_shape:
        raise ChainruleError(f"dataset {args.data!r} holds no images")
    if tuple(data.image_shape) != tuple(getattr(model, "image_shape", None) or ()):
        raise ChainruleError(
            f"dataset {args.data!r} has images of shape {tuple(data.image_shape)}; the model was trained"
            f" on {tuple(getattr(model, 'image_shape', None) or ())}"
        )
    if args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    return data, data.split(args.split)[: args.n].to(torch.get_default_dtype())


def cmd_complete(args) -> dict:
    """Inpaint test images; picture of original | masked | completions; exact conditional NLL.
    With --superres: original | low-res | samples, and the NLL of p(x | low-res x)."""
    import torch

    from chainrule.persistence import load
    from chainrule.report import completion_grid
    from chainrule.tasks.complete import complete, conditional_log_prob, mask_for_model, observed_first

    model = load(args.model_dir)
    if args.superres:
        return _superres(model, args)
    if getattr(model, "lowres_factor", 0):
        raise ChainruleError(
            f"{args.model_dir} is a super-resolution model (lowres_factor {model.lowres_factor}):"
            " use --superres instead of a mask"
        )
    if model.class_conditional:
        raise ChainruleError("completion of class-conditional models is not supported from the CLI yet")
    data, x = _images_for(model, args)
    args.mask = args.mask or "bottom-half"
    g = torch.Generator().manual_seed(args.seed)
    observed = mask_for_model(args.mask, model, g)
    model.eval()
    t = time.time()
    filled = complete(model, x, observed, args.samples, g)
    secs = time.time() - t
    completion_grid(x, observed, filled, data.image_shape, args.out, num_values=model.num_values)
    result = {
        "out": args.out,
        "n": len(x),
        "samples": args.samples,
        "mask": args.mask,
        "seconds": round(secs, 2),
    }
    result["missing_dims"] = int((~observed).sum())
    if observed_first(model, observed):
        nll = -conditional_log_prob(model, x, observed)
        result["conditional_nll_nats"] = float(nll.mean())
        result["conditional_nll_stderr"] = float(nll.std() / len(nll) ** 0.5) if len(nll) > 1 else None
    return result


def _superres(model, args) -> dict:
    """`chainrule complete --superres`: original | low-res | samples; exact log p(x | low-res x)."""
    import math

    import torch

    from chainrule.report import superres_grid
    from chainrule.tasks.superres import lowres_factor, super_resolve, superres_log_prob, upsample

    if args.mask is not None:
        raise ChainruleError("--superres and --mask exclude each other: super-resolution needs no mask")
    try:
        factor = lowres_factor(model)
    except ChainruleError:
        raise ChainruleError(
            f"--superres needs a super-resolution model (GatedPixelCNN built with lowres_factor);"
            f" {args.model_dir} ({model.registry_name}) has no lowres_factor"
        ) from None
    data, x = _images_for(model, args)
    if args.samples < 1:
        raise ChainruleError(f"--samples must be at least 1, got {args.samples}")
    model.eval()
    g = torch.Generator().manual_seed(args.seed)
    t = time.time()
    draws = super_resolve(model, x, args.samples, g)
    secs = time.time() - t
    low = model.condition_from(x)
    superres_grid(
        x, upsample(model, low), draws, data.image_shape, args.out, num_values=model.num_values, factor=factor
    )
    nll = -superres_log_prob(model, x).double()
    dim = x.shape[1]
    return {
        "out": args.out,
        "n": len(x),
        "samples": args.samples,
        "superres_factor": factor,
        "lowres_shape": list(model.lowres_shape),
        "seconds": round(secs, 2),
        "conditional_nll_nats": float(nll.mean()),
        "conditional_nll_stderr": float(nll.std() / len(nll) ** 0.5) if len(nll) > 1 else None,
        "conditional_bits_per_dim": float(nll.mean()) / dim / math.log(2),
    }


def cmd_score(args) -> dict:
    """In-distribution vs OOD scores: table on stderr, histograms PNG, metrics as JSON."""
    import torch

    from chainrule.data import load_dataset
    from chainrule.models import SequenceModel
    from chainrule.persistence import load
    from chainrule.report import score_histograms
    from chainrule.tasks.anomaly import check_data_fits, check_same_kind, compare_ood, format_table

    model = load(args.model_dir)
    if isinstance(model, SequenceModel):
        raise ChainruleError(
            f"{args.model_dir} is a sequence model; `chainrule score` scores images and arrays"
        )
    if model.class_conditional:
        raise ChainruleError("OOD scores of class-conditional models are not supported yet")
    if args.n is not None and args.n < 2:
        raise ChainruleError(f"-n must be at least 2, got {args.n}")
    background = None
    if args.background:
        background = load(args.background)
        check_same_kind(model, background)
    data, ood = load_dataset(args.data), load_dataset(args.ood_data)
    check_data_fits(model, data, args.data)
    check_data_fits(model, ood, args.ood_data)
    n = args.n
    ref_split = "train" if args.split == "val" else "val"  # held out from the scored inputs
    x_in, x_ood, x_ref = data.split(args.split)[:n], ood.split(args.split)[:n], data.split(ref_split)[:n]
    kwargs: dict = _latent_kwargs(model, args)
    if background is not None and hasattr(background, "importance_log_prob") != hasattr(
        model, "importance_log_prob"
    ):
        raise ChainruleError("the model and the background model must both be VAEs or both not be")
    t = time.time()
    result = compare_ood(
        model,
        x_in.to(torch.get_default_dtype()),
        x_ood.to(torch.get_default_dtype()),
        x_ref.to(torch.get_default_dtype()),
        background=background,
        compressor=args.compressor,
        image_shape=data.image_shape,
        batch_size=args.batch_size,
        log_prob_kwargs=kwargs,
    )
    secs = time.time() - t
    summary = result.summary()
    print(
        f"{args.model_dir}: {len(x_in)} {args.data} vs {len(x_ood)} {args.ood_data} ({args.split} split);"
        " OOD = positive\n" + format_table(summary),
        file=sys.stderr,
    )
    score_histograms(
        result.scores_in,
        result.scores_ood,
        args.out,
        labels=(args.data, args.ood_data),
        aurocs={k: v["auroc"] for k, v in summary.items()},
        title=f"{model.registry_name}: {args.data} (in) vs {args.ood_data} (OOD)",
    )
    return {
        "model_dir": args.model_dir,
        "data": args.data,
        "ood_data": args.ood_data,
        "split": args.split,
        "n_in": len(x_in),
        "n_ood": len(x_ood),
        "background": args.background,
        "compressor": args.compressor,
        "typicality_reference": {"split": ref_split, "n": len(x_ref), "nll_mean": result.reference_nll_mean},
        "scores": summary,
        "out": args.out,
        "seconds": round(secs, 2),
    }


def cmd_generate(args) -> None:
    """Print prompt + continuation (or write it to --out); timing goes to stderr as JSON."""
    import torch

    from chainrule.models import SequenceModel
    from chainrule.persistence import atomic_write_bytes, load, read_config

    model = load(args.model_dir)
    if not isinstance(model, SequenceModel):
        raise ChainruleError(f"{args.model_dir} is not a sequence model: use `chainrule sample`")
    if args.n < 0:
        raise ChainruleError(f"-n must be >= 0, got {args.n}")
    if args.samples < 1:
        raise ChainruleError(f"--samples must be >= 1, got {args.samples}")
    audio = model.tokenizer is None
    if audio and args.prompt:
        raise ChainruleError("audio models take no --prompt")
    if audio and not args.out:
        raise ChainruleError("audio models write a WAV file: pass --out FILE.wav")
    prompt = None if audio else model.encode(args.prompt)
    g = torch.Generator().manual_seed(args.seed)
    t = time.perf_counter()
    ids = model.generate(
        prompt,
        args.n,
        batch=args.samples,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=g,
        cache=not args.no_cache,
    )
    secs = time.perf_counter() - t
    if audio:
        from chainrule.data.wav import mu_law_decode, write_wav

        rate = read_config(args.model_dir).get("training", {}).get("sample_rate") or 16000
        write_wav(args.out, mu_law_decode(ids.reshape(-1)), rate)
    else:
        text = "\n\n".join(model.decode(row) for row in ids)
        if args.out:
            atomic_write_bytes(args.out, (text + "\n").encode("utf-8"))
        else:
            print(text)
    stats = {"new_tokens": args.n * args.samples, "seconds": round(secs, 3), "cache": not args.no_cache}
    if args.out:
        stats["out"] = args.out
    print(json.dumps(stats), file=sys.stderr)


def cmd_demo(args) -> dict:
    import torch

    from chainrule.data import load_dataset
    from chainrule.evaluate import evaluate_nll
    from chainrule.models import NADE
    from chainrule.persistence import atomic_write_json
    from chainrule.report import image_grid
    from chainrule.training import TrainConfig, fit

    out = Path(args.out)
    data = load_dataset("digits")
    model = NADE(data.dim, hidden=64, image_shape=list(data.image_shape))
    cfg = TrainConfig(batch_size=32, max_epochs=args.epochs, lr=3e-3, patience=10, seed=0)
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    res = fit(model, data, cfg, out)
    rep = evaluate_nll(model, data.test)
    g = torch.Generator().manual_seed(0)
    image_grid(
        model.sample(64, generator=g),
        data.image_shape,
        out / "samples.png",
        title="NADE on 8x8 binary digits: 64 samples",
    )
    image_grid(data.test[:64], data.image_shape, out / "data.png", title="test images")
    metrics = {
        "dataset": "digits",
        "model": "nade(hidden=64)",
        "test": rep.as_dict(),
        "best_val_nll": res.best_val_nll,
        "train_seconds": round(res.train_seconds, 1),
        "samples_png": str(out / "samples.png"),
        "curves_png": str(out / "curves.png"),
    }
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def cmd_datasets(args) -> dict:
    from chainrule.data import DATASETS

    return {
        "datasets": list(DATASETS),
        "your_own": "csv:PATH (a CSV file of integer codes 0..K-1)",
        "also": "mmap:PATH for an array folder (chainrule data)",
        "files": ["text:PATH (UTF-8 text)", "wav:PATH (PCM WAV, mu-law)"],
    }


def cmd_data(args) -> dict:
    from chainrule.data.arrays import read_meta

    if not args.data_command:
        raise ChainruleError(
            "`chainrule data` needs an action: synth, export or info (see chainrule data -h)"
        )
    t = time.time()
    if args.data_command == "synth":
        from chainrule.data.synthetic import write_synthetic_digits

        for k in ("n", "val", "test", "shard_rows"):
            if getattr(args, k) < 1:
                raise ChainruleError(f"--{k.replace('_', '-')} must be at least 1, got {getattr(args, k)}")
        write_synthetic_digits(args.path, args.n, args.val, args.test, args.seed, args.shard_rows)
    elif args.data_command == "export":
        from chainrule.data import load_dataset
        from chainrule.data.arrays import export_dataset

        export_dataset(load_dataset(args.name), args.path, shard_rows=args.shard_rows)
    meta = read_meta(args.path)
    files = [Path(args.path) / f for fs in meta.splits.values() for f in fs]
    from chainrule.data.arrays import open_array_dataset

    ds = open_array_dataset(args.path)
    return {
        "path": args.path,
        "name": meta.name,
        "rows": {s: len(getattr(ds, s)) for s in ("train", "val", "test")},
        "dim": ds.dim,
        "num_values": meta.num_values,
        "dynamic_binarization": meta.dynamic_binarization,
        "bytes": sum(f.stat().st_size for f in files),
        "shards": {s: len(fs) for s, fs in meta.splits.items()},
        "seconds": round(time.time() - t, 1),
        "use_with": f"--data mmap:{args.path}",
    }


def cmd_bench(args) -> dict:
    from chainrule.benchmark.suite import run_suite

    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if args.only and not parts:
        raise ChainruleError(f"--only takes comma-separated part names, got {args.only!r}")
    return run_suite(args.out, full=args.full, compile=args.compile, only=parts, threads=args.threads)


def _split_names(text: str, what: str) -> list[str]:
    names = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in names):
        raise ChainruleError(f"{what} must be a comma-separated list of names, got {text!r}")
    return names


def _parse_evidence(text: str) -> dict[str, str]:
    """`A=a,B=b` -> {"A": "a", "B": "b"}."""
    evidence: dict[str, str] = {}
    if not text.strip():
        return evidence
    for item in text.split(","):
        name, eq, state = (t.strip() for t in item.partition("="))
        if not eq or not name or not state:
            raise ChainruleError(f"--evidence items look like VARIABLE=STATE, got {item.strip()!r}")
        if name in evidence:
            raise ChainruleError(f"--evidence names {name!r} twice")
        evidence[name] = state
    return evidence


def cmd_bn(args) -> dict:
    from chainrule.graphical import read_bif

    if not args.bn_command:
        raise ChainruleError("`chainrule bn` needs an action: info, query or sample (see chainrule bn -h)")
    bn = read_bif(args.bif)
    if args.bn_command == "info":
        return {
            "file": args.bif,
            "name": bn.name,
            "num_nodes": len(bn.names),
            "num_edges": len(bn.edges),
            "nodes": {v: bn.state_names[v] for v in bn.names},
            "edges": [list(e) for e in bn.edges],
            "free_parameters": bn.parameter_counts(),
        }
    if args.bn_command == "query":
        import itertools

        targets = _split_names(args.target, "--target")
        evidence = _parse_evidence(args.evidence)
        t = time.perf_counter()
        table = bn.query(targets, evidence)
        secs = time.perf_counter() - t
        rows = []
        for states in itertools.product(*(bn.state_names[v] for v in targets)):
            idx = tuple(bn.state_names[v].index(s) for v, s in zip(targets, states))
            rows.append({**dict(zip(targets, states)), "p": float(table[idx])})
        return {"targets": targets, "evidence": evidence, "distribution": rows, "seconds": round(secs, 6)}
    # sample
    import torch

    from chainrule.persistence import atomic_write_bytes

    if args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    t = time.perf_counter()
    x = bn.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    lines = [",".join(bn.names)]
    if args.codes:
        lines += [",".join(map(str, row)) for row in x.tolist()]
    else:
        states = [bn.state_names[v] for v in bn.names]
        lines += [",".join(s[c] for s, c in zip(states, row)) for row in x.tolist()]
    atomic_write_bytes(args.out, ("\n".join(lines) + "\n").encode())
    return {"out": args.out, "n": args.n, "seed": args.seed, "seconds": round(time.perf_counter() - t, 3)}


def parse_int_list(text: str, what: str) -> list[int]:
    """Comma-separated positive integers (`what` names the option in the error)."""
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise ChainruleError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ChainruleError(f"{what} must be positive integers, got {text!r}")
    return values


def _labelled_images(name: str):
    """A named image dataset with labels, or a clear error."""
    from chainrule.data import SequenceDataset, load_dataset

    data = load_dataset(name)
    if isinstance(data, SequenceDataset) or not data.image_shape:
        raise ChainruleError(f"dataset {name!r} holds no images")
    if not data.labels:
        raise ChainruleError(f"dataset {name!r} has no class labels")
    return data


def cmd_classifier(args) -> dict:
    """Train a CNN classifier, or evaluate a CNN or a class-conditional density model (Bayes rule)."""
    from chainrule.classifiers import ClassifierTrainConfig, load_classifier
    from chainrule.classifiers.cnn import train_cnn_on

    if not args.classifier_command:
        raise ChainruleError(
            "`chainrule classifier` needs an action: train or eval (chainrule classifier -h)"
        )
    data = _labelled_images(args.data)
    if args.classifier_command == "train":
        config = ClassifierTrainConfig(
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            lr=args.lr,
            patience=args.patience,
            seed=args.seed,
            max_minutes=args.max_minutes,
        )
        arch = {"channels": parse_int_list(args.channels, "--channels"), "hidden": args.hidden}
        _, metrics = train_cnn_on(data, args.out, config, dropout=args.dropout, seed=args.seed, **arch)
        return {"out": args.out, **metrics}
    if args.n is not None and args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    if _holds_density_model(args.classifier_dir):
        return _eval_generative_classifier(args, data)
    clf = load_classifier(args.classifier_dir)
    if tuple(clf.image_shape) != tuple(data.image_shape) or clf.num_values != data.num_values:
        raise ChainruleError(
            f"{args.classifier_dir} classifies {tuple(clf.image_shape)} images of {clf.num_values} levels;"
            f" dataset {args.data!r} has {tuple(data.image_shape)} images of {data.num_values} levels"
        )
    x = data.split(args.split)[: args.n]
    return {
        "classifier_dir": args.classifier_dir,
        "kind": "cnn",
        "data": args.data,
        "split": args.split,
        "accuracy": clf.score(x, data.labels[args.split][: args.n]),
        "examples": len(x),
    }


def _holds_density_model(directory: str) -> bool:
    """Whether a folder's config.json names a density model (`"model"`) rather than a classifier."""
    from chainrule.persistence import CONFIG

    try:
        config = json.loads((Path(directory) / CONFIG).read_text())
    except (OSError, ValueError):
        return False  # the classifier loader says what is wrong
    return isinstance(config, dict) and "model" in config and "classifier" not in config


def _eval_generative_classifier(args, data) -> dict:
    """`classifier eval` of a class-conditional density model: Bayes rule with the training prior."""
    from chainrule.persistence import load
    from chainrule.tasks.classify import check_fits_data, evaluate_generative_classifier

    model = load(args.classifier_dir)
    try:
        check_fits_data(model, data, args.classifier_dir)
    except ChainruleError as e:
        if model.class_conditional:
            raise
        raise ChainruleError(f"{e}, or give a `chainrule classifier train` folder") from None
    if args.batch_size < 1:
        raise ChainruleError(f"--batch-size must be at least 1, got {args.batch_size}")
    x = data.split(args.split)[: args.n]
    t = time.time()
    report = evaluate_generative_classifier(
        model, x, data.labels[args.split][: args.n], data.labels["train"], batch_size=args.batch_size
    )
    return {
        "classifier_dir": args.classifier_dir,
        "kind": "generative",
        "model": model.registry_name,
        "data": args.data,
        "split": args.split,
        **report.as_dict(),
        "prior_from": f"label frequencies of the {len(data.labels['train'])} training images",
        "seconds": round(time.time() - t, 2),
    }


def cmd_defend(args) -> dict:
    """PixelDefend experiment: table to stderr, JSON to stdout, picture of examples."""
    from chainrule.report import defend_grid
    from chainrule.tasks.attacks import parse_epsilon
    from chainrule.tasks.defend import class_names, defend_report, format_defend_table, load_defence

    eps = [parse_epsilon(t, "--eps") for t in args.eps.split(",")]
    defend_eps = parse_epsilon(args.defend_eps, "--defend-eps")
    step = None if args.pgd_step_size is None else parse_epsilon(args.pgd_step_size, "--pgd-step-size")
    for flag, value in (("-n", args.n), ("--reference", args.reference), ("--batch-size", args.batch_size)):
        if value < 1:
            raise ChainruleError(f"{flag} must be at least 1, got {value}")
    if args.show < 0:
        raise ChainruleError(f"--show must be >= 0, got {args.show}")
    model, classifier, data = load_defence(args.model_dir, args.classifier, args.data)
    x = data.split(args.split)[: args.n]
    y = data.labels[args.split][: args.n]
    result = defend_report(
        model,
        classifier,
        x,
        y,
        data.split("train")[: args.reference],
        attacks=["fgsm", "pgd"] if args.attack == "both" else [args.attack],
        eps=eps,
        defend_eps=defend_eps,
        pgd_steps=args.pgd_steps,
        pgd_step_size=step,
        seed=args.seed,
        batch_size=args.batch_size,
        show=min(args.show, len(x)),
    )
    print(format_defend_table(result.table), file=sys.stderr)
    if args.show:
        defend_grid(
            args.out,
            result.images,
            result.predictions,
            result.labels,
            tuple(data.image_shape),
            num_values=data.num_values,
            class_names=class_names(args.data),
            title=f"classifier labels (green right, red wrong); purification eps_def = {args.defend_eps}",
        )
    picture = {"out": args.out} if args.show else {}
    return {
        "model_dir": args.model_dir,
        "classifier": args.classifier,
        "data": args.data,
        **picture,
        **result.table,
    }


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [e for e in extra if "=" in e and not e.startswith("-")]
    if args.command == "train" and overrides:
        args.overrides = [*args.overrides, *overrides]
        extra = [e for e in extra if e not in overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return 0
    handlers = {
        "train": cmd_train,
        "eval": cmd_eval,
        "sample": cmd_sample,
        "complete": cmd_complete,
        "score": cmd_score,
        "generate": cmd_generate,
        "demo": cmd_demo,
        "datasets": cmd_datasets,
        "data": cmd_data,
        "bench": cmd_bench,
        "bn": cmd_bn,
        "classifier": cmd_classifier,
        "defend": cmd_defend,
    }
    try:
        result = handlers[args.command](args)
    except ChainruleError as e:
        print(f"chainrule: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
