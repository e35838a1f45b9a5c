"""BIF (Bayesian Interchange Format) files, as in the bnlearn repository and pgmpy's examples.

Reading accepts `network`, `variable` (with `type discrete [k] { states }` and `property`
lines) and `probability` blocks with conditional rows `(parent states) p_1, ..., p_k;`, a
`table` (no parents: the distribution; with parents: pgmpy's layout, own state slowest and the
last parent fastest) and `default` rows. `//` and `/* */` comments are skipped. Any malformed
statement raises ChainruleError naming the file and line.

Writing produces the bnlearn layout (one row per parent configuration, first parent fastest).
Numbers are written with Python's shortest round-trip repr, so read -> write -> read gives
bit-identical tables. `.gz` paths are (de)compressed transparently.
"""

from __future__ import annotations

import gzip
import itertools
import math
import os
import re
import zlib
from pathlib import Path

import torch

from chainrule.decompress import gunzip_bounded
from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import ROW_TOLERANCE, BayesianNetwork
from chainrule.graphical.bn_tables import check_table_size
from chainrule.persistence import atomic_write_bytes

_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<quoted>\"[^\"\n]*\")|(?P<punct>[{}()\[\];,|])"
    r"|(?P<word>[^\s{}()\[\];,|\"]+)|(?P<bad>.)",
    re.S,
)
_NAME = re.compile(r"(?!//|/\*)[^\s{}()\[\];,|\"]+")


class _Tokens:
    """A token stream with line numbers, and errors that point at a line."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.items: list[tuple[str, int]] = []
        line = 1
        for m in _TOKEN.finditer(text):
            kind, tok = m.lastgroup, m.group()
            if kind == "bad":
                raise self.error(f"unexpected character {tok!r}", line)
            if kind in ("word", "punct", "quoted"):
                self.items.append((tok[1:-1] if kind == "quoted" else tok, line))
            line += tok.count("\n")
        self.end_line = line
        self.pos = 0

    def error(self, message: str, line: int | None = None) -> ChainruleError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else self.end_line
        return ChainruleError(f"{self.source}: line {line}: {message}")

    def at_end(self) -> bool:
        return self.pos >= len(self.items)

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def line(self) -> int:
        return self.items[self.pos][1] if self.pos < len(self.items) else self.end_line

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise self.error(f"unexpected end of file, expected {what}")
        tok = self.items[self.pos][0]
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        line = self.line()
        got = self.next(f"{tok!r}")
        if got != tok:
            raise self.error(f"expected {tok!r}, got {got!r}", line)

    def word(self, what: str) -> str:
        line = self.line()
        tok = self.next(what)
        if tok in "{}()[];,|" and len(tok) == 1:
            raise self.error(f"expected {what}, got {tok!r}", line)
        return tok

    def skip_statement(self) -> None:
        """Skip to just after the next ';' on the block level (used for `property` lines)."""
        while True:
            tok = self.next("';'")
            if tok == ";":
                return
            if tok in "{}" and len(tok) == 1:
                raise self.error(
                    f"expected ';' to end the property, got {tok!r}", self.items[self.pos - 1][1]
                )

    def numbers(self) -> list[float]:
        """Comma- (or space-) separated numbers up to and including ';'."""
        values = []
        while True:
            line = self.line()
            tok = self.next("a number or ';'")
            if tok == ";":
                if not values:
                    raise self.error("expected at least one probability", line)
                return values
            if tok == ",":
                continue
            try:
                v = float(tok)
            except ValueError:
                raise self.error(f"expected a probability (a number), got {tok!r}", line) from None
            if not math.isfinite(v):
                raise self.error(f"probability {tok!r} is not finite", line)
            values.append(v)

    def name_list(self, close: str, what: str) -> list[str]:
        """Names separated by commas (or spaces), up to `close`."""
        names: list[str] = []
        while True:
            line = self.line()
            tok = self.next(f"{what} or {close!r}")
            if tok == close:
                return names
            if tok == ",":
                continue
            if len(tok) == 1 and tok in "{}()[];|":
                raise self.error(f"expected {what} or {close!r}, got {tok!r}", line)
            names.append(tok)


def parse_bif(text: str, source: str = "<string>") -> BayesianNetwork:
    """A BayesianNetwork from BIF text; `source` names the text in error messages."""
    tk = _Tokens(text, source)
    name = "unknown"
    variables: dict[str, list[str]] = {}
    var_lines: dict[str, int] = {}
    blocks: dict[
        str, tuple[list[str], int, dict[tuple[int, ...], list[float]], list[float] | None, list | None]
    ] = {}
    block_order: list[str] = []
    while not tk.at_end():
        line = tk.line()
        kw = tk.next("a block")
        if kw == "network":
            name = _parse_network(tk)
        elif kw == "variable":
            vname = tk.word("a variable name")
            if vname in variables:
                raise tk.error(
                    f"variable {vname!r} is declared twice (first on line {var_lines[vname]})", line
                )
            variables[vname] = _parse_variable(tk, vname, line)
            var_lines[vname] = line
        elif kw == "probability":
            _parse_probability(tk, line, variables, blocks, block_order)
        else:
            raise tk.error(f"expected 'network', 'variable' or 'probability', got {kw!r}", line)

    missing = [v for v in variables if v not in blocks]
    if missing:
        raise ChainruleError(f"{source}: no probability block for variable(s) {missing}")
    edges = []
    cpds = {}
    for child in block_order:
        parents, bline, rows, table, default = blocks[child]
        edges.extend((p, child) for p in parents)
        cpds[child] = _cpd_values(tk, child, parents, bline, rows, table, default, variables)
    try:
        return BayesianNetwork(variables, edges, cpds, name=name)
    except ChainruleError as e:
        raise ChainruleError(f"{source}: {e}") from None


def _parse_network(tk: _Tokens) -> str:
    """`network NAME { property ...; }`: the name (properties are skipped)."""
    name = tk.word("the network name")
    tk.expect("{")
    while tk.peek() != "}":
        line = tk.line()
        kw = tk.next("'property' or '}'")
        if kw != "property":
            raise tk.error(f"expected 'property' or '}}' in the network block, got {kw!r}", line)
        tk.skip_statement()
    tk.expect("}")
    return name


def _parse_variable(tk: _Tokens, vname: str, line: int) -> list[str]:
    """The body of `variable NAME { type discrete [k] { states }; property ...; }`: the states."""
    tk.expect("{")
    states = None
    while True:
        l2 = tk.line()
        kw = tk.next("'type', 'property' or '}'")
        if kw == "}":
            break
        if kw == "property":
            tk.skip_statement()
        elif kw == "type":
            states = _parse_states(tk, vname, l2)
        else:
            raise tk.error(f"expected 'type', 'property' or '}}' in variable {vname!r}, got {kw!r}", l2)
    if states is None:
        raise tk.error(f"variable {vname!r} has no 'type discrete [k] {{ ... }};' line", line)
    return states


def _parse_states(tk: _Tokens, vname: str, line: int) -> list[str]:
    """`discrete [k] { s_1, ..., s_k };` after `type`: the state names, checked."""
    kind = tk.word("'discrete'")
    if kind != "discrete":
        raise tk.error(f"only discrete variables are supported, got type {kind!r}", line)
    tk.expect("[")
    ctok = tk.word("the number of states")
    if not ctok.isdigit():
        raise tk.error(f"expected the number of states, got {ctok!r}", line)
    tk.expect("]")
    tk.expect("{")
    states = tk.name_list("}", "a state name")
    tk.expect(";")
    if len(states) != int(ctok):
        raise tk.error(f"variable {vname!r} declares {ctok} states but lists {len(states)}", line)
    if len(set(states)) != len(states):
        raise tk.error(f"variable {vname!r} repeats a state name", line)
    return states


def _parse_probability(tk: _Tokens, line: int, variables, blocks, block_order) -> None:
    tk.expect("(")
    child = tk.word("a variable name")
    if tk.peek() == "|":  # optional: the old style lists parents right after the child
        tk.next("'|'")
    parents = tk.name_list(")", "a parent name")
    if child not in variables:
        raise tk.error(f"probability block for undeclared variable {child!r}", line)
    for p in parents:
        if p not in variables:
            raise tk.error(f"parent {p!r} of {child!r} is not a declared variable", line)
    if len(set(parents)) != len(parents):
        raise tk.error(f"probability block for {child!r} repeats a parent", line)
    if child in blocks:
        raise tk.error(f"second probability block for {child!r} (first on line {blocks[child][1]})", line)
    try:
        check_table_size(child, parents, [*(len(variables[p]) for p in parents), len(variables[child])])
    except ChainruleError as e:
        raise tk.error(str(e), line) from None
    tk.expect("{")
    k = len(variables[child])
    rows: dict[tuple[int, ...], list[float]] = {}
    table = default = None
    index = [{s: j for j, s in enumerate(variables[p])} for p in parents]
    while True:
        l2 = tk.line()
        tok = tk.next("a row, 'table', 'default' or '}'")
        if tok == "}":
            break
        if tok == "property":
            tk.skip_statement()
            continue
        if tok == "table":
            if table is not None or rows:
                raise tk.error(f"probability block for {child!r} mixes 'table' with other rows", l2)
            table = tk.numbers()
            size = k * math.prod(len(variables[p]) for p in parents)
            if len(table) != size:
                raise tk.error(f"table of {child!r} has {len(table)} values; expected {size}", l2)
            continue
        if tok == "default":
            default = tk.numbers()
            _check_row(tk, child, default, k, l2, "default row")
            continue
        if tok != "(":
            raise tk.error(
                f"expected '(' to start a row of {child!r}, 'table', 'default' or '}}', got {tok!r}", l2
            )
        if table is not None:
            raise tk.error(f"probability block for {child!r} mixes 'table' with other rows", l2)
        states = tk.name_list(")", "a parent state")
        if len(states) != len(parents):
            raise tk.error(
                f"row of {child!r} names {len(states)} parent state(s);"
                f" expected {len(parents)} ({', '.join(parents)})",
                l2,
            )
        key = []
        for p, s, idx in zip(parents, states, index):
            if s not in idx:
                raise tk.error(f"unknown state {s!r} of parent {p!r} (states: {', '.join(variables[p])})", l2)
            key.append(idx[s])
        values = tk.numbers()
        _check_row(tk, child, values, k, l2, f"row ({', '.join(states)})")
        if tuple(key) in rows:
            raise tk.error(f"row ({', '.join(states)}) of {child!r} is given twice", l2)
        rows[tuple(key)] = values
    blocks[child] = (parents, line, rows, table, default)
    block_order.append(child)


def _check_row(tk: _Tokens, child: str, values: list[float], k: int, line: int, what: str) -> None:
    if len(values) != k:
        noun = "probability" if len(values) == 1 else "probabilities"
        raise tk.error(f"{what} of {child!r} has {len(values)} {noun}; expected {k}", line)
    if min(values) < 0:
        raise tk.error(f"{what} of {child!r} has a negative probability", line)
    if abs(math.fsum(values) - 1) > ROW_TOLERANCE:
        raise tk.error(f"{what} of {child!r} sums to {math.fsum(values):.9g}, not 1", line)


def _cpd_values(tk, child, parents, line, rows, table, default, variables) -> torch.Tensor:
    k = len(variables[child])
    pcards = [len(variables[p]) for p in parents]
    if table is not None:
        t = torch.tensor(table, dtype=torch.float64)
        if not parents:
            return t
        return t.reshape(k, *pcards).movedim(0, -1).contiguous()
    t = torch.empty(*pcards, k, dtype=torch.float64)
    for key in itertools.product(*(range(c) for c in pcards)):
        values = rows.get(key, default)
        if values is None:
            shown = ", ".join(variables[p][s] for p, s in zip(parents, key))
            raise tk.error(f"probability block for {child!r} has no row for ({shown}) and no default", line)
        t[key] = torch.tensor(values, dtype=torch.float64)
    return t


def read_bif(path: str | os.PathLike) -> BayesianNetwork:
    """Read a BIF file (gzip-compressed if it ends in .gz)."""
    path = Path(path)
    if not path.is_file():
        raise ChainruleError(f"BIF file {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gunzip_bounded(raw, str(path))
        text = raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ChainruleError(f"cannot read {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise ChainruleError(f"{path} is not a text BIF file ({e})") from None
    return parse_bif(text, str(path))


def _check_name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name) or name in ("table", "default", "property"):
        raise ChainruleError(
            f"{what} {name!r} cannot be written to BIF: names must be non-empty, without spaces"
            ' or any of {}()[];,|"'
        )
    return name


def _number(v: float) -> str:
    return repr(float(v))


def format_bif(bn: BayesianNetwork) -> str:
    """BIF text for `bn`: bnlearn layout, shortest round-trip numbers."""
    lines = [f"network {_check_name('network name', bn.name)} {{", "}"]
    for v in bn.names:
        states = [_check_name(f"state of {v!r}", s) for s in bn.state_names[v]]
        lines.append(f"variable {_check_name('variable', v)} {{")
        lines.append(f"  type discrete [ {len(states)} ] {{ {', '.join(states)} }};")
        lines.append("}")
    for v in bn.names:
        parents = bn.parents(v)
        t = bn.cpd(v)
        if not parents:
            lines.append(f"probability ( {v} ) {{")
            lines.append(f"  table {', '.join(_number(p) for p in t.tolist())};")
        else:
            lines.append(f"probability ( {v} | {', '.join(parents)} ) {{")
            pcards = [len(bn.state_names[p]) for p in parents]
            for rev in itertools.product(*(range(c) for c in reversed(pcards))):
                key = rev[::-1]  # the first parent varies fastest, as in bnlearn's files
                shown = ", ".join(bn.state_names[p][s] for p, s in zip(parents, key))
                lines.append(f"  ({shown}) {', '.join(_number(p) for p in t[key].tolist())};")
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_bif(bn: BayesianNetwork, path: str | os.PathLike) -> Path:
    """Write `bn` as BIF (atomically; gzip-compressed if the path ends in .gz)."""
    path = Path(path)
    data = format_bif(bn).encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
    return path
