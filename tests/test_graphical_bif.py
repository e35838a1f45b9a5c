"""BIF files: exact read -> write -> read round trips, both row layouts, and malformed input that
is reported with its line number."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical import format_bif, parse_bif, read_bif, write_bif

DATA = Path(__file__).parent / "data" / "bif"
NETWORKS = ["asia", "sachs", "child", "alarm", "insurance"]
ASIA = gzip.decompress((DATA / "asia.bif.gz").read_bytes()).decode()


def _same(a, b) -> None:
    assert a.names == b.names
    assert a.state_names == b.state_names
    assert a.edges == b.edges
    for v in a.names:
        assert a.parents(v) == b.parents(v)
        assert torch.equal(a.cpd(v), b.cpd(v)), v
    assert a.identical(b)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("suffix", [".bif", ".bif.gz"])
def test_round_trip_is_exact(name: str, suffix: str, tmp_path: Path) -> None:
    bn = read_bif(DATA / f"{name}.bif.gz")
    path = write_bif(bn, tmp_path / f"{name}{suffix}")
    again = read_bif(path)
    _same(bn, again)
    assert format_bif(again) == format_bif(bn)
    if suffix == ".bif.gz":
        assert path.read_bytes() == write_bif(again, tmp_path / "second.bif.gz").read_bytes()


def test_asia_structure_and_rows_in_any_order() -> None:
    bn = parse_bif(ASIA)
    assert bn.names == ["asia", "tub", "smoke", "lung", "bronc", "either", "xray", "dysp"]
    assert bn.parents("either") == ["lung", "tub"]
    assert bn.parents("dysp") == ["bronc", "either"]
    # asia.bif lists "(no, yes) 1.0, 0.0" second: lung=no, tub=yes -> either=yes for sure
    either = bn.cpd("either")
    assert either[1, 0].tolist() == [1.0, 0.0] and either[1, 1].tolist() == [0.0, 1.0]
    assert bn.cpd("dysp")[1, 0].tolist() == [0.7, 0.3]  # (no, yes): bronc=no, either=yes


def test_table_layouts_and_extras() -> None:
    """`table` with parents (pgmpy's layout), `default` rows, comments and properties."""
    text = """// a comment
network "tiny" {
  property author = somebody ;
}
variable A { type discrete [ 2 ] { a0, a1 }; property position = (1, 2) ; }
variable B { type discrete [ 3 ] { b0 b1 b2 }; }
/* block
   comment */
probability ( A ) { table 0.25, 0.75; }
probability ( B | A ) {
  table 0.1, 0.2,
        0.3, 0.4,
        0.6, 0.4;
}
"""
    bn = parse_bif(text)
    assert bn.name == "tiny" and bn.state_names["B"] == ["b0", "b1", "b2"]
    # pgmpy's table: own state slowest, parents fastest -> P(B | A=a0) = (0.1, 0.3, 0.6)
    torch.testing.assert_close(
        bn.cpd("B"), torch.tensor([[0.1, 0.3, 0.6], [0.2, 0.4, 0.4]], dtype=torch.float64)
    )
    rows = text.replace(
        "table 0.1, 0.2,\n        0.3, 0.4,\n        0.6, 0.4;",
        "(a1) 0.2, 0.4, 0.4;\n  default 0.1, 0.3, 0.6;",
    )
    assert parse_bif(rows).identical(bn)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("(yes) 0.05, 0.95;", "(yes) 0.05, zz;", "expected a probability"),
        ("(yes) 0.05, 0.95;", "(yes) 0.05, 0.85;", "sums to 0.9"),
        ("(yes) 0.05, 0.95;", "(yes) 0.05, 0.95, 0.0;", "has 3 probabilities; expected 2"),
        ("(yes) 0.05, 0.95;", "(maybe) 0.05, 0.95;", "unknown state 'maybe' of parent 'asia'"),
        ("(yes) 0.05, 0.95;", "(yes) -0.05, 1.05;", "negative"),
        ("(yes) 0.05, 0.95;", "(yes) 0.05; 0.95;", "has 1 probability; expected 2"),
        ("(yes) 0.05, 0.95;", "(yes) 0.05, 0.95; 0.5;", "expected '\\(' to start a row"),
        ("variable smoke {", "varable smoke {", "expected 'network', 'variable' or 'probability'"),
        (
            "  type discrete [ 2 ] { yes, no };\n}\nvariable lung",
            "  type discrete [ 3 ] { yes, no };\n}\nvariable lung",
            "declares 3 states but lists 2",
        ),
        ("probability ( lung | smoke ) {", "probability ( lung | smokes ) {", "parent 'smokes' of 'lung'"),
        ("(yes) 0.05, 0.95;", '(yes) 0.05, 0.95; "', "unexpected character"),
    ],
)
def test_malformed_line_is_named(old: str, new: str, message: str) -> None:
    assert ASIA.count(old) == 1
    text = ASIA.replace(old, new)
    line = _line_of(text, new.split("\n")[0])
    with pytest.raises(ChainruleError, match=message) as err:
        parse_bif(text, "asia.bif")
    assert f"asia.bif: line {line}:" in str(err.value)


def test_missing_row_names_the_block(tmp_path: Path) -> None:
    text = ASIA.replace("  (no) 0.01, 0.99;\n}\nprobability ( smoke )", "}\nprobability ( smoke )")
    path = tmp_path / "broken.bif"
    path.write_text(text)
    with pytest.raises(ChainruleError, match=r"line \d+: probability block for 'tub' has no row for \(no\)"):
        read_bif(path)


def test_other_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ChainruleError, match="does not exist"):
        read_bif(tmp_path / "nope.bif")
    (tmp_path / "bad.bif.gz").write_bytes(b"not gzip")
    with pytest.raises(ChainruleError, match="cannot read"):
        read_bif(tmp_path / "bad.bif.gz")
    with pytest.raises(ChainruleError, match="no probability block for variable"):
        parse_bif(ASIA[: ASIA.index("probability ( dysp")])
    with pytest.raises(ChainruleError, match="end of file"):
        parse_bif(ASIA[: ASIA.index("(no, no) 0.1, 0.9;")])
    cyclic = ASIA.replace(
        "probability ( asia ) {\n  table 0.01, 0.99;",
        "probability ( asia | tub ) {\n  (yes) 0.01, 0.99;\n  (no) 0.01, 0.99;",
    )
    with pytest.raises(ChainruleError, match="cycle: (asia -> tub -> asia|tub -> asia -> tub)"):
        parse_bif(cyclic)


def test_unwritable_names() -> None:
    from chainrule.graphical import BayesianNetwork

    bn = BayesianNetwork({"has space": ["a", "b"]}, [], {"has space": [0.5, 0.5]})
    with pytest.raises(ChainruleError, match="cannot be written to BIF"):
        format_bif(bn)
