import soundfile as sf

from sa_slm.cli import main
from sa_slm.demo import DEMO_QUESTION


def test_cli_generate_writes_24khz_wavs(tmp_path, capsys):
    out = tmp_path / "answer.wav"
    code = main(["generate", "--model", "tiny", "--device", "cpu", "--audio", str(DEMO_QUESTION), "--out", str(out),
                 "--num-samples", "2", "--max-new-codes", "20", "--seed", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("reply: ")
    for k in range(2):
        wav, sr = sf.read(tmp_path / f"answer_{k}.wav")
        assert sr == 24_000 and len(wav) == 20 * 2 * 240  # 20 codes x DiT repeats 2 x BigVGAN hop 240
        assert str(tmp_path / f"answer_{k}.wav") in printed


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    code = main(["generate", "--model", "tiny", "--device", "cpu", "--audio", str(tmp_path / "nope.wav"),
                 "--out", str(tmp_path / "a.wav")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.wav: audio file not found" in err
    assert not (tmp_path / "a.wav").exists()
