"""`chainrule kl P Q`: KL(P || Q) between two models of the contract, exact where it can be."""

from __future__ import annotations

import time

from chainrule.cli.common import CommandParser, load_model_or_bif, seed_value
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    k = sub.add_parser(
        "kl",
        help="KL(P || Q) between two models: exact where possible, else Monte Carlo with its s.e.",
        description="KL divergence KL(P || Q) in nats between two models over the same events. Two"
        " Bayesian networks: exact by variable elimination (any size); a discrete P whose support can"
        " be enumerated: exact by summing over it; otherwise (or with --monte-carlo or --data) the"
        " Monte Carlo average of log P(x) - log Q(x) over draws from P, with its standard error."
        " P and Q are model folders (runs/.../model, zoo/...) or BIF files (.bif, .bif.gz).",
    )
    k.add_argument("p", help="model folder or BIF file of P (the distribution the expectation is under)")
    k.add_argument("q", help="model folder or BIF file of Q")
    k.add_argument("--data", help="a CSV of integer codes holding draws from P (Monte Carlo over them)")
    k.add_argument("-n", type=int, default=20_000, help="samples from P for Monte Carlo (default 20000)")
    k.add_argument("--seed", type=seed_value, default=0, help="seed of the samples from P")
    k.add_argument(
        "--monte-carlo", action="store_true", help="estimate by sampling even where an exact value exists"
    )
    k.set_defaults(handler=cmd_kl)
    return k


def cmd_kl(args) -> dict:
    import torch

    from chainrule.data.csv_file import read_csv_codes
    from chainrule.kl import kl_divergence

    if args.n < 2:
        raise ChainruleError(f"-n must be at least 2 (the standard error needs two samples), got {args.n}")
    p, q = load_model_or_bif(args.p), load_model_or_bif(args.q)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    if args.data:
        codes, _ = read_csv_codes(args.data)
        result = kl_divergence(p, q, data=torch.as_tensor(codes))
    else:
        result = kl_divergence(p, q, n=args.n, generator=generator, monte_carlo=args.monte_carlo)
    return {"p": args.p, "q": args.q, **result, "seconds": round(time.perf_counter() - start, 4)}
