"""`sa-slm doctor`: every check GO on the tiny model with all four stages, a failing check is a NO-GO row
(exit 1, no traceback) while the others still run, and bad arguments stop with exit 2 before anything loads."""

import contextlib
import io
import json
import re

import pytest
import torch

from sa_slm import cli
from sa_slm.doctor import LOGPROB_TOLERANCE
from sa_slm.paths import CONFIG_DIR
from sa_slm.uapo import consistency

ENV_CHECKS = ["versions", "devices", "bf16", "deepspeed ops", "model loads", "logprobs match"]
STAGE_CHECKS = ["data audit", "stage 0 step", "stage 1 step", "stage 2 step", "stage 3 step"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def table_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """check name -> (status, detail) from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^(.+?)\s{2,}(GO|NO-GO|SKIP)\s+[\d.]+\s{2}(.*)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    report = tmp_path_factory.mktemp("doctor") / "doctor.json"
    code, out, err = run_cli(["doctor", "--model", "tiny", "--device", "cpu", "--json", str(report)])
    return code, out, err, json.loads(report.read_text())


@pytest.mark.slow
def test_doctor_on_tiny_passes_every_check_and_prints_its_table(full_run):
    code, out, err, report = full_run
    assert code == 0, out + err[-3000:]
    assert "Traceback" not in err
    rows = table_rows(out)
    assert list(rows) == ENV_CHECKS + STAGE_CHECKS  # the table, in order, at the end of stdout
    assert {name: status for name, (status, _) in rows.items()} == {name: "GO" for name in rows}
    assert out.rstrip().splitlines()[-1] == f"GO: {len(rows)} checks, none failed"
    assert report["verdict"] == "GO" and [r["name"] for r in report["checks"]] == list(rows)
    if not torch.cuda.is_available():
        assert rows["devices"][1] == "cpu only"
    gap = float(re.search(r"max \|diff\| (\S+) per code", rows["logprobs match"][1]).group(1))
    assert 0 <= gap <= LOGPROB_TOLERANCE[torch.float32]
    for stage, config in zip(range(4), ["stage0_tiny", "stage1_tiny", "stage2_tiny", "stage3_tiny"]):
        detail = rows[f"stage {stage} step"][1]
        assert detail.startswith(f"{config}.yaml, loss ") and "peak RSS of the process" in detail
    assert "stage 1 train_manifest 40/40 good" in rows["data audit"][1]


def test_a_logprob_mismatch_is_a_no_go_row_and_exit_1(monkeypatch):
    real = consistency.logprob_agreement

    def shifted(*args, **kwargs):  # the teacher-forced pass off by 0.5 nat at every code
        agreement = real(*args, **kwargs)
        agreement.recorded = agreement.recorded + 0.5 * agreement.mask
        return agreement

    monkeypatch.setattr(consistency, "logprob_agreement", shifted)
    code, out, err = run_cli(["doctor", "--model", "tiny", "--device", "cpu", "--stages", ""])
    assert code == 1
    assert "Traceback" not in err and "error:" not in err
    rows = table_rows(out)
    assert list(rows) == ENV_CHECKS
    status, detail = rows["logprobs match"]
    assert status == "NO-GO"
    assert detail.startswith("teacher-forced log-probs differ from the sampled ones: max |diff| 5.00e-01 per code")
    assert rows["model loads"][0] == "GO"  # the other checks ran
    assert out.rstrip().splitlines()[-1] == "NO-GO: 1 of 6 checks failed (logprobs match)"


def test_a_stage_with_a_missing_manifest_is_no_go_and_the_others_still_run(tmp_path):
    config = (CONFIG_DIR / "stage1_tiny.yaml").read_text().replace(
        "${resource:tiny_corpus/manifest_codes.jsonl}", str(tmp_path / "gone.jsonl"))
    (tmp_path / "stage1.yaml").write_text(config)
    code, out, err = run_cli(["doctor", "--model", "tiny", "--device", "cpu", "--stages", "1",
                              "--config-dir", str(tmp_path)])
    assert code == 1
    assert "Traceback" not in err
    rows = table_rows(out)
    assert list(rows) == ENV_CHECKS + ["data audit", "stage 1 step"]
    assert rows["data audit"] == ("NO-GO", f"stage 1 train_manifest: {tmp_path / 'gone.jsonl'} not found")
    assert rows["stage 1 step"][0] == "NO-GO" and "gone.jsonl" in rows["stage 1 step"][1]
    assert rows["logprobs match"][0] == "GO"


@pytest.mark.parametrize("argv, message", [
    (["--stages", "0,5"], r"^error: --stages: '5' is not a stage \(give a comma list of 0, 1, 2, 3\)$"),
    (["--model", "{missing}"], r"^error: --model .*missing: model folder not found"),
    (["--model", "{empty}"], r"^error: --model .*empty: the folder is empty, not a model folder"),
    (["--config-dir", "{empty}"], r"^error: --config-dir .*empty: no stage0.yaml or stage0_\*.yaml"),
    (["--device", "cuda:7"], r"^error: --device cuda:7: "),
])
def test_bad_arguments_exit_2_before_anything_loads(argv, message, tmp_path, monkeypatch):
    from sa_slm.facade import SASLM

    def never(*args, **kwargs):
        raise AssertionError("a model loaded before the arguments were checked")

    monkeypatch.setattr(SASLM, "from_pretrained", never)
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in argv]
    code, out, err = run_cli(["doctor", "--device", "cpu", *argv])
    assert code == 2
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), err
