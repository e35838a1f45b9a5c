"""The CLI's one error boundary: a ChainruleError is one line (exit 2), any other exception one line
naming the command and the exception (exit 3, a traceback only with --debug or CHAINRULE_DEBUG),
Ctrl-C one line (exit 130)."""

from __future__ import annotations

import pytest

import chainrule.cli.kl as kl_cli
from chainrule.cli import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, build_parser, main
from chainrule.errors import ChainruleError


def raising(error: BaseException):
    def handler(args):
        raise error

    return handler


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)


@pytest.mark.parametrize(
    "error, shown",
    [
        (ValueError("bad value\nsecond line"), "ValueError: bad value"),
        (RuntimeError("boom"), "RuntimeError: boom"),
        (MemoryError(), "MemoryError"),
        (KeyError("k"), "KeyError: 'k'"),
        (RecursionError("maximum recursion depth exceeded"), "RecursionError: maximum recursion"),
    ],
)
def test_internal_error_is_one_line_without_traceback(monkeypatch, capsys, error, shown):
    monkeypatch.setattr(kl_cli, "cmd_kl", raising(error))
    assert main(["kl", "p", "q"]) == EXIT_INTERNAL == 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("chainrule kl: internal error: " + shown)
    assert "--debug" in err and "CHAINRULE_DEBUG=1" in err and "Traceback" not in err
    assert "second line" not in err


def test_long_message_is_cut(monkeypatch, capsys):
    monkeypatch.setattr(kl_cli, "cmd_kl", raising(RuntimeError("x" * 5000)))
    assert main(["kl", "p", "q"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 600


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(monkeypatch, capsys, how):
    monkeypatch.setattr(kl_cli, "cmd_kl", raising(RuntimeError("boom")))
    argv = ["kl", "p", "q"]
    if how == "flag":
        argv = ["--debug", *argv]
    else:
        monkeypatch.setenv("CHAINRULE_DEBUG", "1")
    assert main(argv) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert err.rstrip().splitlines()[-1].startswith("chainrule kl: internal error: RuntimeError: boom")


def test_chainrule_error_is_its_one_line(monkeypatch, capsys):
    monkeypatch.setattr(kl_cli, "cmd_kl", raising(ChainruleError("P and Q differ in their variables")))
    assert main(["kl", "p", "q"]) == EXIT_ERROR == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "chainrule: error: P and Q differ in their variables\n"


def test_keyboard_interrupt(monkeypatch, capsys):
    monkeypatch.setattr(kl_cli, "cmd_kl", raising(KeyboardInterrupt()))
    assert main(["kl", "p", "q"]) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "chainrule kl: interrupted\n"


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == EXIT_ERROR


def test_help_documents_the_exit_codes():
    text = build_parser().format_help()
    assert "exit codes:" in text and "--debug" in text and "CHAINRULE_DEBUG=1" in text
    for code in ("0 ", "2 ", "3 ", "130"):
        assert f"\n  {code}" in text
