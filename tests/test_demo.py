import pytest
import soundfile as sf

from sa_slm.demo import run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    wav_path = run_demo(tmp_path)
    wav, sr = sf.read(wav_path)
    assert sr == 24_000 and len(wav) > 0
    assert abs(wav).max() > 0  # not silence
    out = capsys.readouterr().out
    assert str(wav_path) in out
    report = tmp_path / "eval" / "report" / "index.html"
    assert f"report: {report}" in out and report.is_file()
