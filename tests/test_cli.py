"""python -m lowbit: the commands parse, read well, and the main job runs end to end (on a small decoder)."""

import json
import subprocess
import sys

import pytest

from lowbit import cli, e2e

SMALL = ["--layers", "1", "--vocab", "256", "--hidden-size", "128", "--intermediate-size", "256", "--heads", "2",
         "--kv-heads", "1", "--context", "4", "--steps", "2", "--no-progress"]


@pytest.mark.parametrize("command", [[], ["main"], ["synthetic"], ["e2e"], ["accuracy"], ["chart"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(command + ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m lowbit")
    if command in ([], ["main"]):
        assert "main" in out


def test_no_command_is_the_main_job():
    from lowbit import real_model
    args = cli.build_parser().parse_args(["main"])
    assert args.func is cli.cmd_main
    assert args.variants == list(real_model.DEFAULT_VARIANTS) and args.batches == [1, 8]
    assert args.windows == real_model.WINDOWS and args.window == real_model.WINDOW
    args = cli.build_parser().parse_args(["synthetic"])
    assert args.func is cli.cmd_synthetic
    assert args.layers == e2e.DEFAULT_LAYERS and args.batches == [1, 8] and args.group_size == 128
    assert args.hidden_size == 4096 and args.intermediate_size == 14336 and args.num_key_value_heads == 8


def test_bad_arguments_are_refused(capsys):
    for argv in (["e2e", "--batches", "0"], ["e2e", "--variants", "fp8"], ["synthetic", "--method", "gptq"],
                 ["main", "--variants", "fp8"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_main_job_runs_the_real_model(tmp_path, capsys):
    """Options without a command go to the main job: SmolLM2 from its GGUF (a short run here)."""
    from lowbit import real_model
    try:
        real_model.gguf_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    argv = ["--variants", "bf16", "lowbit-gguf", "--windows", "1", "--window", "32", "--steps", "2",
            "--new-tokens", "3", "--batches", "1", "--no-progress", "--json", str(tmp_path / "r.json")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for model in ("bf16", "lowbit-gguf"):
        assert f"\n| {model} " in out, model
    assert "GGUF import" in out and "imported" in out and "threads" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert [r["variant"] for r in data["rows"]] == ["bf16", "lowbit-gguf"] and data["machine"]["threads"]


def test_synthetic_job_runs_and_writes_json_and_chart(tmp_path, capsys):
    assert cli.main(["synthetic"] + SMALL + ["--json", str(tmp_path / "r.json"), "--chart", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    for model in ("bf16", "torch-int4", "torch-int8", "lowbit-a16w8", "lowbit-a16w4", "lowbit-da8w8"):
        assert f"\n| {model} " in out, model
    assert "MiniLM cosine" in out and "threads" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert {r["variant"] for r in data["results"]} >= {"bf16", "lowbit-a16w4"} and data["machine"]["threads"]
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["chart", str(tmp_path / "r.json"), "-o", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 0


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "lowbit", "--help"], capture_output=True, text=True, check=True)
    assert "COMMAND" in out.stdout
