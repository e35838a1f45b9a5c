"""`chainrule bn info|query|sample BIF`: discrete Bayesian networks read from BIF files."""

from __future__ import annotations

import time
from pathlib import Path

from chainrule.cli.common import CommandParser, at_least, seed_value
from chainrule.errors import ChainruleError

#: rows drawn and written at a time by `bn sample` (memory stays flat for any -n)
SAMPLE_CHUNK = 100_000


def add_parser(sub) -> CommandParser:
    b = sub.add_parser(
        "bn",
        help="Bayesian networks from BIF files: info, query, sample, fit",
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
    bs.add_argument("--seed", type=seed_value, default=0)
    bs.add_argument("--out", required=True, help="CSV path")
    bs.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    bs.add_argument(
        "--codes",
        action="store_true",
        help="write state indices 0..k-1 instead of state names (what --data csv:PATH reads)",
    )
    bf = bsub.add_parser(
        "fit",
        help="fit a network to a CSV of codes (CPDs of a BIF structure, or --learn the graph); write a BIF",
        description="Maximum-likelihood CPDs (with --alpha pseudo-counts) counted in a CSV of integer"
        " state codes whose header names the variables (what `chainrule bn sample --codes` writes),"
        " for the graph of a --structure BIF file, or for a graph learned from the data with --learn:"
        " hill-climb (tabu search on --score) or chow-liu (the maximum-likelihood tree). With --learn,"
        " state names come from --structure/--states when given, else states 0..k-1 from the data.",
    )
    bf.add_argument("data", help="CSV of integer codes, one column per variable (header row)")
    bf.add_argument("--structure", help="BIF file whose graph is kept (with --learn: only its states)")
    bf.add_argument("--states", help="with --learn: BIF file giving the variables' state names")
    bf.add_argument(
        "--learn",
        nargs="?",
        const="hill-climb",
        choices=["hill-climb", "chow-liu"],
        help="learn the graph: hill-climb (the default) or chow-liu",
    )
    bf.add_argument("--score", default="bic", choices=["bic", "bdeu", "k2"], help="hill-climb score (bic)")
    bf.add_argument("--ess", type=float, default=10.0, help="BDeu equivalent sample size (default 10)")
    bf.add_argument("--max-indegree", type=int, help="most parents a node may get (default: no limit)")
    bf.add_argument("--alpha", type=float, default=1.0, help="pseudo-counts per cell (0 = plain MLE)")
    bf.add_argument("--out", required=True, help="BIF path to write (.bif or .bif.gz)")
    bf.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    b.set_defaults(handler=cmd_bn)
    return b


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


def _check_out(args, inputs: list[str | None]) -> Path:
    """--out checked before any work (cli/outputs.py: not a folder, not inside a model folder, an
    existing file only with --force), and never one of the command's own input files."""
    from chainrule.cli.outputs import check_output

    resolved = Path(args.out).expanduser().resolve()
    for given in inputs:
        if given and Path(given).expanduser().resolve() == resolved:
            raise ChainruleError(f"--out {args.out} is an input of this command; write elsewhere")
    return check_output(args.out, args.force)


def cmd_bn(args) -> dict:
    from chainrule.graphical import read_bif

    if not args.bn_command:
        raise ChainruleError(
            "`chainrule bn` needs an action: info, query, sample or fit (see chainrule bn -h)"
        )
    if args.bn_command == "fit":
        return _fit(args)
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
    return _sample(args, bn)


def _sample(args, bn) -> dict:  # noqa: ANN001 - the network is imported lazily
    """`bn sample`: ancestral draws written in chunks of SAMPLE_CHUNK rows (one generator
    throughout) through a temporary file renamed into place at the end."""
    import torch

    from chainrule.cli.outputs import replacing
    from chainrule.cli.sample import check_disk_space
    from chainrule.validation import check_num_samples

    at_least(args.n, 1, "-n")
    check_num_samples(args.n)
    path = _check_out(args, [args.bif])
    check_disk_space(path, args.n * len(bn.names), "csv", "discrete")
    t = time.perf_counter()
    g = torch.Generator().manual_seed(args.seed)
    states = [bn.state_names[v] for v in bn.names]
    with replacing(path) as f:
        f.write((",".join(bn.names) + "\n").encode())
        for a in range(0, args.n, SAMPLE_CHUNK):
            x = bn.sample(min(SAMPLE_CHUNK, args.n - a), generator=g).tolist()
            if args.codes:
                lines = [",".join(map(str, row)) for row in x]
            else:
                lines = [",".join(s[c] for s, c in zip(states, row)) for row in x]
            f.write(("\n".join(lines) + "\n").encode())
    return {"out": args.out, "n": args.n, "seed": args.seed, "seconds": round(time.perf_counter() - t, 3)}


def _fit(args) -> dict:
    """`bn fit`: CPDs counted for a given structure, or for a learned one; written as BIF."""
    import torch

    from chainrule.data.csv_file import read_csv_codes
    from chainrule.graphical import read_bif, write_bif

    if args.alpha < 0:
        raise ChainruleError(f"--alpha must be >= 0, got {args.alpha}")
    if not args.learn and not args.structure:
        raise ChainruleError("bn fit needs --structure FILE (keep its graph) or --learn (learn one)")
    if args.structure and args.states:
        raise ChainruleError("give the state names once: --structure or --states, not both")
    states_file = args.structure or args.states
    _check_out(args, [args.data, args.structure, args.states])
    reference = read_bif(states_file) if states_file else None
    codes, columns = read_csv_codes(args.data)
    data = torch.as_tensor(codes)
    if reference is not None:
        missing = sorted(set(reference.names) - set(columns))
        if missing:
            raise ChainruleError(f"{args.data} has no column for variable(s) {missing[:5]} of {states_file}")
        data = data[:, [columns.index(v) for v in reference.names]]
    t = time.perf_counter()
    bn = _learn(args, data, columns, reference) if args.learn else reference.fit(data, alpha=args.alpha)
    write_bif(bn, args.out)
    out = {"out": args.out, "rows": len(data), "alpha": args.alpha}
    if args.learn:
        out.update(learn=args.learn, edges=len(bn.edges), free_parameters=bn.num_parameters())
        if args.learn == "hill-climb":
            out.update(score=args.score, max_indegree=args.max_indegree)
    return {**out, "seconds": round(time.perf_counter() - t, 3)}


def _learn(args, data, columns: list[str], reference):  # noqa: ANN001, ANN202 - torch/BN imported lazily
    """The network whose graph `--learn` finds in `data` (columns in `reference`'s order if given)."""
    from chainrule.graphical import learn_structure, states_from_data

    if args.max_indegree is not None and args.max_indegree < 0:
        raise ChainruleError(f"--max-indegree must be >= 0, got {args.max_indegree}")
    if args.ess <= 0:
        raise ChainruleError(f"--ess must be > 0, got {args.ess}")
    if reference is None:
        variables = states_from_data(data, columns)
    else:
        variables = [(v, reference.state_names[v]) for v in reference.names]
    return learn_structure(
        data,
        variables,
        method=args.learn,
        score=args.score,
        equivalent_sample_size=args.ess,
        max_indegree=args.max_indegree,
        alpha=args.alpha,
        name="learned",
    )
