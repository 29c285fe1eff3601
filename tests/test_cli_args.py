"""The shared command-line helpers: what each accepts, and the one-line error for what it refuses."""

import argparse
import os

import pytest

from tracker.cli_args import (OptionError, backend_options, ensure_writable_dir, parse_box,
                              positive_int, quote_command)


def test_parse_box_reads_four_floats_and_names_the_option():
    assert parse_box("-10,5.5,40,60") == (-10.0, 5.5, 40.0, 60.0)
    with pytest.raises(ValueError, match=r"^--box: expected four comma-separated numbers "
                                         r"x,y,w,h, got '1,2,3'$"):
        parse_box("1,2,3", "--box")
    with pytest.raises(ValueError, match=r"^expected four .* got 'a,b,c,d'$"):
        parse_box("a,b,c,d")


@pytest.mark.parametrize("text, expected", [("1", 1), (" 12 ", 12), (3, 3)])
def test_positive_int_accepts_counts(text, expected):
    assert positive_int(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "two", "", True, False, 2.0, None])
def test_positive_int_refuses_everything_else(text):
    with pytest.raises(OptionError, match=rf"^--frames: expected a positive integer, got "):
        positive_int(text, "--frames")


def test_parser_errors_are_argparse_one_liners(capsys):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--count", type=positive_int)
    parser.add_argument("--box", type=parse_box)
    assert parser.parse_args(["--count", "4", "--box=-1,2,3,4"]).count == 4
    for argv, message in ((["--count", "0"], "argument --count: expected a positive integer, got '0'"),
                          (["--box", "1,2"], "argument --box: expected four comma-separated "
                                             "numbers x,y,w,h, got '1,2'")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert capsys.readouterr().err.splitlines()[-1] == f"p: error: {message}"


def test_ensure_writable_dir_creates_nested_folders(tmp_path):
    folder = ensure_writable_dir(tmp_path / "a" / "b", "--out")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_ensure_writable_dir_names_a_file_in_the_way(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for path in (blocker, blocker / "under"):
        with pytest.raises(ValueError) as caught:
            ensure_writable_dir(path, "--results")
        assert str(caught.value) == f"--results: {path} is not a folder (it or a parent is a file)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes any folder")
def test_ensure_writable_dir_names_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ValueError, match=rf"^--out: cannot write to {locked}: Permission denied$"):
            ensure_writable_dir(locked, "--out")
        with pytest.raises(ValueError, match=r"^--out: cannot create .*: Permission denied$"):
            ensure_writable_dir(locked / "sub", "--out")
    finally:
        locked.chmod(0o700)


def test_backend_options_pass_threads_to_onnxruntime_only():
    assert backend_options("onnxruntime", 2) == {"threads": 2}
    assert backend_options("onnxruntime", None) == {}
    assert backend_options("torch", 2) == {}


def test_quote_command_round_trips_through_a_shell_split():
    import shlex

    argv = ["python", "-m", "tracker.demo", "--video", "my clip.mp4", "--init=-1,2,3,4", "it's"]
    line = quote_command(argv)
    assert line == "python -m tracker.demo --video 'my clip.mp4' --init=-1,2,3,4 'it'\"'\"'s'"
    assert shlex.split(line) == argv
