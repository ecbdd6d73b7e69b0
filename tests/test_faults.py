"""Walk every fault of `tests/faults/` (see its docstring for what each run must show)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import traceback

import pytest

import faults
from faults import TALLY as _TALLY
from faults import Fault, summary_line

FAULTS: list[Fault] = [f for m in pkgutil.iter_modules(faults.__path__)
                       for f in importlib.import_module(f"faults.{m.name}").FAULTS]


def _params():
    names = [f.name for f in FAULTS]
    assert len(names) == len(set(names)), "fault names must be unique"
    return [pytest.param(f, id=f"{f.finding}-{f.name}", marks=[pytest.mark.slow] if f.slow else [])
            for f in FAULTS]


@pytest.mark.parametrize("fault", _params())
def test_fault(fault: Fault, tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.WARNING)
    main, argv = fault.setup(tmp_path)
    _TALLY["tried"] += 1
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    except BaseException:
        _TALLY["tracebacks"] += 1
        pytest.fail(f"traceback instead of a clean exit:\n{traceback.format_exc()}")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    lost = fault.lost(tmp_path) if fault.lost else []
    _TALLY["lost"] += len(lost)
    assert code == fault.exit_code, f"exit {code}, expected {fault.exit_code}; stderr:\n{err[-2000:]}"
    if fault.exit_code == 2:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, f"expected one `error:` line, got:\n{err[-2000:]}"
        if fault.message:
            assert re.search(fault.message, errors[0]), errors[0]
    elif fault.message:
        assert re.search(fault.message, out + err + caplog.text), (out + err + caplog.text)[-2000:]
    assert not lost, f"good items lost: {lost}"


def test_fault_summary():
    """Runs last in this module; conftest prints the same line in pytest's closing summary (the README quotes it)."""
    print(f"\n{summary_line()}")
    assert _TALLY["tracebacks"] == 0 and _TALLY["lost"] == 0
