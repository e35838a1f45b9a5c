"""`chainrule generate MODEL_DIR --prompt TEXT`: text (or mu-law audio) from a sequence model."""

from __future__ import annotations

import json
import sys
import time

from chainrule.cli.common import CommandParser, seed_value
from chainrule.errors import ChainruleError

MAX_TOKENS = 10_000_000  # new tokens in all (-n x --samples): the ids are held, 8 bytes each
TEXT_CHUNK = 1000  # tokens decoded and written at a time


def add_parser(sub) -> CommandParser:
    g = sub.add_parser(
        "generate",
        help="generate text (or mu-law audio) from a sequence model",
        description="Sample a continuation of --prompt from a char-RNN, Transformer or WaveNet. The"
        " text (prompt + continuation) goes to stdout, timing to stderr. -n 0 prints the prompt"
        " unchanged; a prompt character outside the model's vocabulary is an error. Text is written as"
        f" it is generated (one sample); -n x --samples is at most {MAX_TOKENS:,} tokens.",
    )
    g.add_argument("model_dir")
    g.add_argument("--prompt", default="", help="text to continue (default: start from nothing)")
    g.add_argument("-n", type=int, default=500, help="number of new tokens (default 500)")
    g.add_argument("--seed", type=seed_value, default=0)
    g.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1)")
    g.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    g.add_argument("--top-p", type=float, default=None, help="keep the smallest set of mass >= p")
    g.add_argument("--samples", type=int, default=1, help="number of continuations (default 1)")
    g.add_argument("--no-cache", action="store_true", help="reference sampler: a full pass per token")
    g.add_argument("--out", help="write to this file instead of stdout (audio models: a .wav)")
    g.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    g.set_defaults(handler=cmd_generate)
    return g


def cmd_generate(args) -> None:
    """Print prompt + continuation (or write it to --out); timing goes to stderr as JSON."""
    import torch

    from chainrule.cli.outputs import check_output
    from chainrule.persistence import load

    model = load(args.model_dir)
    if model.conditioned_on != "prefix":
        raise ChainruleError(f"{args.model_dir} is not a sequence model: use `chainrule sample`")
    if args.n < 0:
        raise ChainruleError(f"-n must be >= 0, got {args.n}")
    if args.samples < 1:
        raise ChainruleError(f"--samples must be >= 1, got {args.samples}")
    if args.n * args.samples > MAX_TOKENS:
        raise ChainruleError(
            f"-n x --samples = {args.n * args.samples:,} new tokens; the most one run makes is"
            f" {MAX_TOKENS:,} (run several with different --seed)"
        )
    audio = model.tokenizer is None
    if audio and args.prompt:
        raise ChainruleError("audio models take no --prompt")
    if audio and not args.out:
        raise ChainruleError("audio models write a WAV file: pass --out FILE.wav")
    path = check_output(args.out, args.force, args.model_dir) if args.out else None
    prompt = None if audio else model.encode(args.prompt)
    g = torch.Generator().manual_seed(args.seed)
    t = time.perf_counter()
    pieces = model.generate_stream(
        prompt,
        args.n,
        batch=args.samples,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=g,
        cache=not args.no_cache,
        chunk=TEXT_CHUNK,
    )
    if audio:
        _write_audio(args, path, torch.cat(list(pieces), 1))
    elif args.samples == 1:
        _stream_text(model, path, pieces)
    else:
        ids = torch.cat(list(pieces), 1)
        _stream_text(model, path, iter(["\n\n".join(model.decode(row) for row in ids)]))
    secs = time.perf_counter() - t
    stats = {"new_tokens": args.n * args.samples, "seconds": round(secs, 3), "cache": not args.no_cache}
    if args.out:
        stats["out"] = args.out
    print(json.dumps(stats), file=sys.stderr)


def _write_audio(args, path, ids) -> None:
    from chainrule.data.wav import mu_law_decode, write_wav
    from chainrule.persistence import read_config

    rate = read_config(args.model_dir).get("training", {}).get("sample_rate") or 16000
    write_wav(path, mu_law_decode(ids.reshape(-1)), rate)


def _stream_text(model, path, pieces) -> None:
    """Decode and write each piece as it comes (a str, or ids (1, k)), to `path` (through a
    temporary file renamed at the end) or stdout (flushed), then the final newline."""
    from chainrule.cli.outputs import replacing

    def texts():
        for p in pieces:
            yield p if isinstance(p, str) else model.decode(p[0])
        yield "\n"

    if path is None:
        for text in texts():
            sys.stdout.write(text)
            sys.stdout.flush()
        return
    with replacing(path) as f:
        for text in texts():
            f.write(text.encode("utf-8"))
