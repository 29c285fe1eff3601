"""``python -m tracker.benchmark accuracy`` / ``merge`` on the shared OTB-layout sequences.

The printed table and ``performance.json`` are checked against metrics computed here from the
saved boxes and the ground truth, and against the got10k toolkit's own report code run on the
same result files. Small GOT-10k and LaSOT folders are built from OTB frames.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from got10k.experiments import ExperimentGOT10k, ExperimentOTB

from tests.boxes import ious
from tests.conftest import shared_path
from tracker.benchmark import accuracy
from tracker.benchmark.__main__ import main
from tracker.benchmark.accuracy import evaluate
from tracker.benchmark.datasets import GOT10kFolder, OTBFolder
from tracker.benchmark.experiments import absent_frames
from tracker.zoo import get_config

MODEL = "nanotrack-v2"
SUBSET = ["Football1", "uav_wakeboard7", "Skiing"]
# Every run tracks with one torch thread (in worker processes, or here with --threads 1; see
# restore_torch_threads): results are then bitwise comparable across runs, and one thread
# degrades gracefully when other work shares the CPU.
WORKERS = ["--workers", "2"]
ONE_THREAD = ["--threads", "1"]


def _cli(*argv):
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module", autouse=True)
def weights_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
        patch.setenv("TRACKER_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """``--threads`` in this process sets torch's and OpenCV's thread counts; give the next tests
    theirs back."""
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv2_threads)


@pytest.fixture(scope="module")
def otb_root():
    return shared_path("data", "otb")


@pytest.fixture(scope="module")
def full_run(otb_root, tmp_path_factory):
    """One run over the ten shared sequences; its results serve the other tests."""
    base = tmp_path_factory.mktemp("otb")
    args = ["accuracy", "--dataset", "otb", "--root", otb_root, "--model", MODEL, *WORKERS,
            "--results", base / "results", "--reports", base / "reports",
            "--markdown", base / "accuracy.md"]
    code, out, err = _cli(*args)
    assert code == 0, err
    return {"args": args, "out": out, "err": err, "base": base,
            "results": base / "results" / "OTB" / MODEL,
            "report": base / "reports" / "OTB" / MODEL / "performance.json"}


def _boxes(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


def _row(table, name=MODEL):
    """The printed row of ``name`` as {column: text}."""
    lines = table.strip().splitlines()
    header = [c.strip() for c in lines[0].split("  ") if c.strip()]
    row = next(line for line in lines[2:] if line.startswith(name)).split()
    return dict(zip(header, row))


def _independent_metrics(result_dir, otb_root, sequences):
    """OTB one-pass metrics written from the protocol, not from the toolkit."""
    pairs = []
    for name in sequences:
        truth = np.loadtxt(otb_root / name / "groundtruth_rect.txt", delimiter=",")
        boxes = _boxes(result_dir / f"{name}.txt")
        boxes[0] = truth[0]
        pairs.append((boxes, truth))
    return _independent_scores(pairs)


def _independent_scores(pairs):
    """Success AUC, precision@20px and normalised precision, averaged over (boxes, truth) pairs."""
    success, precision, norm_precision = [], [], []
    for boxes, truth in pairs:
        iou = ious(boxes, truth)
        dx = (boxes[:, 0] + boxes[:, 2] / 2) - (truth[:, 0] + truth[:, 2] / 2)
        dy = (boxes[:, 1] + boxes[:, 3] / 2) - (truth[:, 1] + truth[:, 3] / 2)
        success.append(np.mean([np.mean(iou > t) for t in np.arange(21) / 20]))
        precision.append(np.mean(np.hypot(dx, dy) <= 20))
        norm = np.hypot(dx / np.maximum(truth[:, 2], 1), dy / np.maximum(truth[:, 3], 1))
        norm_precision.append(np.mean([np.mean(norm <= t) for t in np.arange(51) / 100]))
    return np.mean(success), np.mean(precision), np.mean(norm_precision)


@pytest.mark.slow
def test_table_report_plots_and_markdown(full_run):
    row = _row(full_run["out"])
    assert row["sequences"] == "10" and row["frames"] == "1590"
    assert 0.6 < float(row["success AUC"]) < 0.75 and 0.9 < float(row["precision@20px"]) <= 1
    assert float(row["fps"]) > 0 and float(row["frames/s"]) > 0
    report_dir = full_run["report"].parent
    for plot in ("success_plots.png", "precision_plots.png"):
        assert (report_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in full_run["results"].glob("*.txt")) == sorted(
        f"{s}.txt" for s in OTBFolder(shared_path("data", "otb")).seq_names)
    assert len(list((full_run["results"] / "times").glob("*_time.txt"))) == 10
    markdown = (full_run["base"] / "accuracy.md").read_text()
    assert f"| {MODEL} | 10 | 1590 | {row['success AUC']} | {row['precision@20px']} |" in markdown
    assert "python -m tracker.benchmark accuracy --dataset otb --root" in markdown


@pytest.mark.slow
def test_numbers_equal_an_independent_computation(full_run, otb_root):
    sequences = OTBFolder(otb_root).seq_names
    success, precision, norm_precision = _independent_metrics(full_run["results"], otb_root, sequences)
    overall = json.loads(full_run["report"].read_text())[MODEL]["overall"]
    assert overall["success_score"] == pytest.approx(success, abs=1e-12)
    assert overall["precision_score"] == pytest.approx(precision, abs=1e-12)
    assert overall["normalized_precision_score"] == pytest.approx(norm_precision, abs=1e-12)
    row = _row(full_run["out"])
    assert float(row["success AUC"]) == pytest.approx(success, abs=5e-5)
    assert float(row["precision@20px"]) == pytest.approx(precision, abs=5e-5)
    assert float(row["norm. precision"]) == pytest.approx(norm_precision, abs=5e-5)


@pytest.mark.slow
def test_numbers_equal_the_toolkit_report_on_the_same_files(full_run, otb_root, tmp_path):
    toolkit = ExperimentOTB.__new__(ExperimentOTB)
    toolkit.dataset = OTBFolder(otb_root)
    toolkit.result_dir = str(full_run["results"].parent)
    toolkit.report_dir = str(tmp_path)
    toolkit.nbins_iou, toolkit.nbins_ce = 21, 51
    with contextlib.redirect_stdout(io.StringIO()):
        expected = toolkit.report([MODEL])[MODEL]["overall"]
    overall = json.loads(full_run["report"].read_text())[MODEL]["overall"]
    for key in ("success_score", "precision_score", "success_rate", "speed_fps"):
        assert overall[key] == expected[key], key
    assert float(_row(full_run["out"])["fps"]) == pytest.approx(expected["speed_fps"], abs=0.05)


@pytest.mark.slow
def test_second_run_skips_finished_sequences(full_run):
    stamps = {p: p.stat().st_mtime_ns for p in full_run["results"].glob("*.txt")}
    code, out, err = _cli(*full_run["args"])
    assert code == 0
    assert "0 to track, 10 finished before (skipped)" in err
    assert {p: p.stat().st_mtime_ns for p in full_run["results"].glob("*.txt")} == stamps
    assert _row(out)["success AUC"] == _row(full_run["out"])["success AUC"]


@pytest.mark.slow
def test_sequences_filter_reports_only_those(full_run, otb_root, tmp_path):
    code, out, err = _cli(
        "merge", "--dataset", "otb", "--root", otb_root, "--model", MODEL,
        "--results", full_run["base"] / "results", "--reports", tmp_path,
        "--sequences", "Football1,uav_*")
    assert code == 0, err
    row = _row(out)
    assert (row["sequences"], row["frames"]) == ("2", str(74 + 67))
    success, precision, _ = _independent_metrics(
        full_run["results"], otb_root, ["Football1", "uav_wakeboard7"])
    overall = json.loads((tmp_path / "OTB" / MODEL / "performance.json").read_text())[MODEL]["overall"]
    assert overall["success_score"] == pytest.approx(success, abs=1e-12)
    assert overall["precision_score"] == pytest.approx(precision, abs=1e-12)


def _subset_report(full_run, otb_root, reports):
    code, _, err = _cli("merge", "--dataset", "otb", "--root", otb_root, "--model", MODEL,
                        "--results", full_run["base"] / "results", "--reports", reports,
                        "--sequences", ",".join(SUBSET))
    assert code == 0, err
    return json.loads((reports / "OTB" / MODEL / "performance.json").read_text())[MODEL]


@pytest.mark.slow
def test_shards_then_merge_equal_the_single_run(full_run, otb_root, tmp_path):
    common = ["--dataset", "otb", "--root", otb_root, "--model", MODEL, "--sequences",
              ",".join(SUBSET), "--results", tmp_path / "results", "--reports", tmp_path / "reports"]
    code, out, err = _cli("accuracy", *common, *WORKERS, "--shard", "1/2")
    assert code == 0 and out == "" and "merge" in err
    code, _, err = _cli("merge", *common)
    assert code == 2 and err.count("\n") == 1 and "1 of 3 (Skiing)" in err
    assert _cli("accuracy", *common, *WORKERS, "--shard", "2/2")[0] == 0
    code, out, err = _cli("merge", *common)
    assert code == 0, err
    merged = json.loads((tmp_path / "reports" / "OTB" / MODEL / "performance.json").read_text())[MODEL]
    single = _subset_report(full_run, otb_root, tmp_path / "single")
    # same settings as the single run (one torch thread per worker): identical files and numbers
    for name in SUBSET:
        assert (tmp_path / "results" / "OTB" / MODEL / f"{name}.txt").read_bytes() == (
            full_run["results"] / f"{name}.txt").read_bytes()
    for key in ("success_score", "precision_score", "normalized_precision_score", "success_curve",
                "precision_curve"):
        assert merged["overall"][key] == single["overall"][key], key


@pytest.mark.slow
def test_one_process_gives_the_boxes_of_the_workers(full_run, otb_root, tmp_path):
    subset = SUBSET[:2]
    code, out, err = _cli("accuracy", "--dataset", "otb", "--root", otb_root, "--model", MODEL,
                          "--sequences", ",".join(subset), *ONE_THREAD,
                          "--results", tmp_path / "results", "--reports", tmp_path / "reports")
    assert code == 0, err
    assert _row(out)["sequences"] == "2"
    for name in subset:
        assert (tmp_path / "results" / "OTB" / MODEL / f"{name}.txt").read_bytes() == (
            full_run["results"] / f"{name}.txt").read_bytes()
        assert (tmp_path / "results" / "OTB" / MODEL / "times" / f"{name}_time.txt").is_file()
    assert not list((tmp_path / "results" / "OTB").glob(".partial-*"))


FRAMES = 8
#: cover.label of the first GOT-10k val sequence: frame 5 marked absent, left out of the scores.
COVER = np.array([8, 8, 8, 8, 0, 8, 8, 8])


def _copy_frames(source, target, names):
    target.mkdir(parents=True)
    for index, path in enumerate(sorted(source.glob("*.jpg"))[:FRAMES]):
        shutil.copy(path, target / names.format(index + 1))


@pytest.fixture
def small_layouts(tmp_path):
    """Couple's first frames as a GOT-10k val/test folder (0-based boxes) and a LaSOT folder."""
    source = shared_path("data", "otb", "Couple")
    truth = np.loadtxt(source / "groundtruth_rect.txt", delimiter=",")[:FRAMES]
    got = tmp_path / "got10k"
    for subset, rows in (("val", truth), ("test", truth[:1])):
        names = [f"GOT-10k_{subset.title()}_{i:06d}" for i in (1, 2)]
        for number, name in enumerate(names):
            folder = got / subset / name
            _copy_frames(source / "img", folder, "{:08d}.jpg")
            np.savetxt(folder / "groundtruth.txt", rows - [1, 1, 0, 0], fmt="%.4f", delimiter=",")
            if subset == "val" and number == 0:
                (folder / "meta_info.ini").write_text("[METAINFO]\nresolution: (320, 240)\n")
                np.savetxt(folder / "cover.label", COVER, fmt="%d")
        listed = names + (["GOT-10k_Val_000099"] if subset == "val" else [])  # not downloaded
        (got / subset / "list.txt").write_text("\n".join(listed) + "\n")
    lasot = tmp_path / "lasot"
    folder = lasot / "person" / "person-3"
    _copy_frames(source / "img", folder / "img", "{:08d}.jpg")
    np.savetxt(folder / "groundtruth.txt", truth, fmt="%.4f", delimiter=",")
    # Frames 3 and 4 are labelled invisible (3 both ways), though their boxes stay.
    for label, hidden in (("full_occlusion", (3,)), ("out_of_view", (3, 4))):
        flags = ["1" if i in hidden else "0" for i in range(FRAMES)]
        (folder / f"{label}.txt").write_text(",".join(flags))
    return {"got": got, "lasot": lasot, "truth": truth, "tmp": tmp_path}


def _got10k_val_run(small_layouts):
    """``accuracy`` on the small GOT-10k val folder: (printed row, stderr, results folder,
    this model's report)."""
    tmp = small_layouts["tmp"]
    code, out, err = _cli("accuracy", "--dataset", "got10k", "--root", small_layouts["got"],
                          "--model", MODEL, *ONE_THREAD,
                          "--results", tmp / "results", "--reports", tmp / "reports")
    assert code == 0, err
    report = json.loads((tmp / "reports" / "GOT-10k" / MODEL / "performance.json").read_text())
    return _row(out), err, tmp / "results" / "GOT-10k", report[MODEL]


def test_got10k_and_lasot_layouts(small_layouts):
    tmp = small_layouts["tmp"]
    got_row, err, results, _ = _got10k_val_run(small_layouts)
    assert "note: 1 sequences named in list.txt are not in the folder" in err
    assert (got_row["sequences"], got_row["frames"]) == ("2", str(2 * FRAMES))
    got_boxes = _boxes(results / MODEL / "GOT-10k_Val_000001" / "GOT-10k_Val_000001_001.txt")
    truth0 = small_layouts["truth"] - [1, 1, 0, 0]
    # both val sequences hold the same frames; the first one's frame 5 is marked absent
    iou = ious(got_boxes[1:], truth0[1:])
    counted = np.concatenate([iou[COVER[1:] > 0], iou])
    assert float(got_row["AO"]) == pytest.approx(counted.mean(), abs=5e-5)
    assert float(got_row["SR0.5"]) == pytest.approx(np.mean(counted > 0.5), abs=5e-5)
    assert float(got_row["SR0.75"]) == pytest.approx(np.mean(counted > 0.75), abs=5e-5)
    assert (tmp / "reports" / "GOT-10k" / MODEL / "success_plot.png").is_file()

    code, out, err = _cli("accuracy", "--dataset", "lasot", "--root", small_layouts["lasot"],
                          "--model", MODEL, *ONE_THREAD,
                          "--results", tmp / "results", "--reports", tmp / "reports")
    assert code == 0, err
    assert _row(out)["sequences"] == "1"
    assert out.splitlines()[-1] == ("target labelled full_occlusion or out_of_view (evaluated, as "
                                    "the got10k toolkit evaluates LaSOT): 2 frames: person-3 2")
    performance = json.loads((tmp / "reports" / "LaSOT" / MODEL / "performance.json").read_text())
    assert performance[MODEL]["overall"]["hidden_frames"] == 2
    lasot_boxes = _boxes(tmp / "results" / "LaSOT" / MODEL / "person-3.txt")
    # the same frames and target: 1-based LaSOT boxes are the 0-based GOT-10k ones plus one
    np.testing.assert_allclose(lasot_boxes - [1, 1, 0, 0], got_boxes, atol=2e-3)
    assert (tmp / "reports" / "LaSOT" / MODEL / "success_plots.png").is_file()


def test_got10k_val_prints_otb_scores_of_the_frames_ao_counts(small_layouts):
    row, _, results, report = _got10k_val_run(small_layouts)
    assert list(row)[3:9] == ["AO", "SR0.5", "SR0.75", "success AUC", "precision@20px",
                              "norm. precision"]
    truth0 = small_layouts["truth"] - [1, 1, 0, 0]
    pairs = []
    for name, cover in (("GOT-10k_Val_000001", COVER), ("GOT-10k_Val_000002", np.full(FRAMES, 8))):
        boxes = _boxes(results / MODEL / name / f"{name}_001.txt")
        counted = (np.arange(FRAMES) > 0) & (cover > 0)
        pairs.append((boxes[counted], truth0[counted]))
    success, precision, norm_precision = _independent_scores(pairs)
    overall = report["overall"]
    assert overall["success_score"] == pytest.approx(success, abs=1e-12)
    assert overall["precision_score"] == pytest.approx(precision, abs=1e-12)
    assert overall["normalized_precision_score"] == pytest.approx(norm_precision, abs=1e-12)
    assert float(row["success AUC"]) == pytest.approx(success, abs=5e-5)
    assert float(row["precision@20px"]) == pytest.approx(precision, abs=5e-5)
    assert float(row["norm. precision"]) == pytest.approx(norm_precision, abs=5e-5)
    # the first frame and the absent one are left out: counting them would change the scores
    everything = [(_boxes(results / MODEL / n / f"{n}_001.txt"), truth0)
                  for n in ("GOT-10k_Val_000001", "GOT-10k_Val_000002")]
    assert _independent_scores(everything)[0] != pytest.approx(success, abs=1e-6)


def test_got10k_numbers_equal_the_toolkit_report_on_the_same_files(small_layouts, tmp_path):
    row, _, results, report = _got10k_val_run(small_layouts)
    toolkit = ExperimentGOT10k.__new__(ExperimentGOT10k)
    toolkit.dataset = GOT10kFolder(small_layouts["got"], "val")
    toolkit.subset = "val"
    toolkit.result_dir = str(results)
    toolkit.report_dir = str(tmp_path / "toolkit")
    toolkit.nbins_iou, toolkit.repetitions = 101, 3
    with contextlib.redirect_stdout(io.StringIO()):
        expected = toolkit.report([MODEL])[MODEL]["overall"]
    overall = report["overall"]
    for key in ("ao", "sr", "speed_fps", "succ_curve"):
        assert overall[key] == expected[key], key
    assert overall["sr75"] == expected["succ_curve"][75]
    assert float(row["AO"]) == pytest.approx(expected["ao"], abs=5e-5)
    assert float(row["SR0.5"]) == pytest.approx(expected["sr"], abs=5e-5)
    assert float(row["SR0.75"]) == pytest.approx(expected["succ_curve"][75], abs=5e-5)
    assert float(row["fps"]) == pytest.approx(expected["speed_fps"], abs=0.05)


def test_got10k_test_subset_gives_a_submission_archive(small_layouts):
    tmp = small_layouts["tmp"]
    code, out, err = _cli("accuracy", "--dataset", "got10k", "--subset", "test",
                          "--root", small_layouts["got"], "--model", MODEL, *ONE_THREAD,
                          "--results", tmp / "results", "--reports", tmp / "reports")
    assert code == 0, err
    assert list(_row(out)) == ["model", "sequences", "frames", "fps", "frames/s"]
    assert _row(out)["fps"] == "-"
    assert (tmp / "results" / "GOT-10k" / f"{MODEL}.zip").is_file()
    assert len(_boxes(tmp / "results" / "GOT-10k" / MODEL / "GOT-10k_Test_000002" /
                      "GOT-10k_Test_000002_001.txt")) == FRAMES


@pytest.mark.parametrize("argv, message", [
    (["--root", "{tmp}/absent"], "--root {tmp}/absent does not exist"),
    (["--root", "{tmp}"], "holds no sequence in the OTB layout"),
    (["--root", "{otb}", "--model", "nanotrack-v9"], "unknown model 'nanotrack-v9'"),
    (["--root", "{otb}", "--sequences", "Nope*"], "--sequences 'Nope*' matches no sequence"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, otb_root, argv, message):
    fill = {"tmp": tmp_path, "otb": otb_root}
    argv = [a.format(**fill) for a in argv]
    if "--model" not in argv:
        argv += ["--model", MODEL]
    code, out, err = _cli("accuracy", "--dataset", "otb", *argv,
                          "--results", tmp_path / "r", "--reports", tmp_path / "p")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message.format(**fill) in err
    assert not (tmp_path / "r").exists()


def test_missing_weights_fail_before_tracking(tmp_path, otb_root):
    code, _, err = _cli("accuracy", "--dataset", "otb", "--root", otb_root,
                        "--model", "siamrpnpp-alex", "--sequences", "Girl",
                        "--results", tmp_path / "r", "--reports", tmp_path / "p")
    assert code == 2
    assert "error: " in err and "siamrpnpp-alex" in err
    assert not list(tmp_path.rglob("Girl.txt"))


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1-2"])
def test_bad_shard_is_a_usage_error(otb_root, shard):
    with pytest.raises(SystemExit) as stop, contextlib.redirect_stderr(io.StringIO()):
        main(["accuracy", "--dataset", "otb", "--root", str(otb_root), "--model", MODEL,
              "--shard", shard])
    assert stop.value.code == 2


def test_raw_boxes_protocol_reproduces_the_reference_trajectory(otb_root, tmp_path):
    """With --raw-boxes the tracker starts from the file's numbers, as NanoTrack's reference
    run did, so its boxes are the reference trajectory shifted by the reference's half pixel."""
    code, out, err = _cli(
        "accuracy", "--dataset", "otb", "--root", otb_root, "--model", MODEL, "--raw-boxes",
        "--short-term", "--uncorrected", "--sequences", "Crossing", *ONE_THREAD,
        "--results", tmp_path / "results", "--reports", tmp_path / "reports",
    )
    assert code == 0, err
    name = f"{MODEL}-raw-short-term-uncorrected"
    assert _row(out, name)
    ours = _boxes(tmp_path / "results" / "OTB" / name / "Crossing.txt")
    reference = _boxes(shared_path("fixtures", "nanotrack", "traj_v2", "Crossing.txt"))
    np.testing.assert_allclose(ours[0], reference[0])
    np.testing.assert_allclose(ours[1:], reference[1:] + [0.5, 0.5, 0, 0], atol=0.02)


@pytest.mark.parametrize("option", ["--results", "--reports", "--markdown"])
def test_unwritable_output_folder_fails_before_tracking(tmp_path, otb_root, option):
    blocker = tmp_path / "file"
    blocker.write_text("")
    folders = {"--results": tmp_path / "r", "--reports": tmp_path / "p",
               option: blocker / "sub" / ("table.md" if option == "--markdown" else "")}
    code, _, err = _cli("accuracy", "--dataset", "otb", "--root", otb_root, "--model", MODEL,
                        "--sequences", "Girl", *[str(v) for kv in folders.items() for v in kv])
    assert code == 2
    assert err.splitlines()[-1] == (
        f"error: {option}: {blocker / 'sub'} is not a folder (it or a parent is a file)")
    assert not list(tmp_path.rglob("Girl.txt"))


def test_undecodable_frame_is_a_one_line_error_naming_it(tmp_path):
    folder = tmp_path / "otb" / "Tiny"
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for number in (1, 2, 3):
        cv2.imwrite(str(folder / "img" / f"{number:04d}.jpg"),
                    rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    broken = folder / "img" / "0002.jpg"
    broken.write_bytes(b"not a jpeg")
    (folder / "groundtruth_rect.txt").write_text("10,10,40,30\n" * 3)
    code, _, err = _cli("accuracy", "--dataset", "otb", "--root", tmp_path / "otb", "--model",
                        MODEL, "--results", tmp_path / "r", "--reports", tmp_path / "p")
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith(f"error: Tiny: cannot decode frame {broken}: ") and "Traceback" not in err


def _synthetic_otb(root, truth_lines):
    """One OTB-layout sequence ``Tiny``: a bright block drifting over noise, one frame per
    ground-truth line."""
    folder = root / "Tiny"
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for number in range(len(truth_lines)):
        frame = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
        x = 40 + 3 * number
        frame[40:70, x:x + 40] = (40, 200, 240)
        cv2.imwrite(str(folder / "img" / f"{number + 1:04d}.jpg"), frame)
    (folder / "groundtruth_rect.txt").write_text("\n".join(truth_lines) + "\n")
    return folder


def test_absent_ground_truth_rows_are_left_out_and_counted(tmp_path):
    lines = [f"{41 + 3 * i},41,40,30" for i in range(8)]
    lines[3], lines[6] = "NaN,NaN,NaN,NaN", "0,0,0,0"
    folder = _synthetic_otb(tmp_path / "otb", lines)
    code, out, err = _cli("accuracy", "--dataset", "otb", "--root", tmp_path / "otb",
                          "--model", MODEL, *ONE_THREAD, "--results", tmp_path / "r",
                          "--reports", tmp_path / "p", "--markdown", tmp_path / "a.md")
    assert code == 0, err
    truth = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",")
    boxes = _boxes(tmp_path / "r" / "OTB" / MODEL / "Tiny.txt")
    boxes[0] = truth[0]
    valid = np.ones(len(truth), bool)
    valid[[3, 6]] = False
    success, precision, norm_precision = _independent_scores([(boxes[valid], truth[valid])])
    report = json.loads((tmp_path / "p" / "OTB" / MODEL / "performance.json").read_text())
    overall, seq = report[MODEL]["overall"], report[MODEL]["seq_wise"]["Tiny"]
    for scores in (overall, seq):
        assert scores["success_score"] == pytest.approx(success, abs=1e-12)
        assert scores["precision_score"] == pytest.approx(precision, abs=1e-12)
        assert scores["normalized_precision_score"] == pytest.approx(norm_precision, abs=1e-12)
        assert scores["absent_frames"] == 2
    row = _row(out)
    assert (row["frames"], row["success AUC"]) == ("8", f"{success:.4f}")
    assert row["precision@20px"] == f"{precision:.4f}"
    note = ("absent target (ground truth NaN or 0,0,0,0; left out of the metrics): "
            "2 frames: Tiny 2")
    assert note in out.splitlines()
    assert "Absent target" in (tmp_path / "a.md").read_text()
    # Counted as misses, the two frames would lower both scores: the exclusion is visible.
    counted = _independent_scores([(boxes, np.nan_to_num(truth))])
    assert counted[0] < success - 0.05 and counted[1] <= precision - 0.2


def test_evaluate_returns_the_numbers_the_command_prints(tmp_path):
    """The library function on a synthetic sequence: its numbers equal those computed here
    from the saved boxes, and the command's table is the report's formatting."""
    lines = [f"{41 + 3 * i},41,40,30" for i in range(6)]
    lines[2] = "NaN,NaN,NaN,NaN"
    folder = _synthetic_otb(tmp_path / "otb", lines)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        report = evaluate("otb", tmp_path / "otb", [MODEL], threads=1, results=tmp_path / "r",
                          reports=tmp_path / "p", progress=False)
    assert err.getvalue() == ""
    truth = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",")
    boxes = _boxes(tmp_path / "r" / "OTB" / MODEL / "Tiny.txt")
    boxes[0] = truth[0]
    valid = np.arange(len(truth)) != 2
    success, precision, norm_precision = _independent_scores([(boxes[valid], truth[valid])])
    scores = report[MODEL]
    assert scores.success_auc == pytest.approx(success, abs=1e-12)
    assert scores.precision_20px == pytest.approx(precision, abs=1e-12)
    assert scores.normalized_precision == pytest.approx(norm_precision, abs=1e-12)
    assert scores.ao is None and scores.submission_archive is None
    assert scores.tracked_frames == 6 and scores.seconds > 0 and scores.fps > 0
    assert scores.frames_per_second == pytest.approx(6 / scores.seconds)
    assert (report.experiment, report.sequences, report.frames) == ("OTB", 1, 6)
    assert report.metrics == ("success AUC", "precision@20px", "norm. precision")
    assert report.absent == (("Tiny", 1),) and report.absent_frames == 1
    assert report.report_file == tmp_path / "p" / "OTB" / MODEL / "performance.json"
    with pytest.raises(KeyError, match=f"no tracker 'nope' in the report; it has {MODEL}"):
        report["nope"]

    code, out, _ = _cli("merge", "--dataset", "otb", "--root", tmp_path / "otb", "--model", MODEL,
                        "--results", tmp_path / "r", "--reports", tmp_path / "p",
                        "--markdown", tmp_path / "a.md")
    assert code == 0
    assert out.splitlines() == report.lines()
    assert report.lines()[-1] == ("absent target (ground truth NaN or 0,0,0,0; left out of the "
                                  "metrics): 1 frames: Tiny 1")
    command = (f"python -m tracker.benchmark merge --dataset otb --root {tmp_path / 'otb'} "
               f"--model {MODEL} --results {tmp_path / 'r'} --reports {tmp_path / 'p'} "
               f"--markdown {tmp_path / 'a.md'}")
    assert (tmp_path / "a.md").read_text() == report.markdown(command)
    assert f"| {MODEL} | 1 | 6 | {success:.4f} | {precision:.4f} | {norm_precision:.4f} |" in (
        report.markdown(command))


def test_sequence_without_absent_rows_prints_no_note(tmp_path):
    _synthetic_otb(tmp_path / "otb", [f"{41 + 3 * i},41,40,30" for i in range(3)])
    code, out, err = _cli("accuracy", "--dataset", "otb", "--root", tmp_path / "otb",
                          "--model", MODEL, *ONE_THREAD, "--results", tmp_path / "r",
                          "--reports", tmp_path / "p")
    assert code == 0, err
    report = json.loads((tmp_path / "p" / "OTB" / MODEL / "performance.json").read_text())
    assert report[MODEL]["overall"]["absent_frames"] == 0
    assert "absent" not in out


def test_got10k_without_cover_label_counts_absent_rows_as_invisible(tmp_path):
    """The toolkit's AO leaves out frames with cover 0: without cover.label, an absent row
    gives cover 0 there, so AO, SR and the OTB scores all leave it out."""
    folder = tmp_path / "val" / "GOT-10k_Val_000001"
    _synthetic_otb(tmp_path / "otb", ["41,41,40,30", "NaN,NaN,NaN,NaN", "0,0,0,0", "50,41,40,30"])
    shutil.copytree(tmp_path / "otb" / "Tiny" / "img", folder)
    shutil.copy(tmp_path / "otb" / "Tiny" / "groundtruth_rect.txt", folder / "groundtruth.txt")
    dataset = GOT10kFolder(tmp_path)
    dataset.return_meta = True
    _, anno, meta = dataset[0]
    assert meta["cover"].tolist() == [8, 0, 0, 8]
    assert absent_frames(anno) == 2


@pytest.mark.parametrize("first, shown", [("NaN,NaN,NaN,NaN", "nan,nan,nan,nan"),
                                          ("0,0,0,0", "0,0,0,0")])
def test_absent_first_box_is_a_one_line_error_naming_the_sequence(tmp_path, first, shown):
    _synthetic_otb(tmp_path / "otb", [first, "44,41,40,30", "47,41,40,30"])
    code, _, err = _cli("accuracy", "--dataset", "otb", "--root", tmp_path / "otb",
                        "--model", MODEL, "--results", tmp_path / "r", "--reports", tmp_path / "p")
    assert code == 2
    assert err.splitlines()[-1].startswith(
        f"error: sequence Tiny: the first frame's ground truth {shown} marks no target")
    assert "Traceback" not in err and not list(tmp_path.rglob("Tiny.txt"))


@pytest.mark.parametrize("option", ["--workers", "--threads"])
def test_a_count_below_one_is_a_usage_error_naming_the_option(otb_root, option):
    err = io.StringIO()
    with pytest.raises(SystemExit) as stop, contextlib.redirect_stderr(err):
        main(["accuracy", "--dataset", "otb", "--root", str(otb_root), "--model", MODEL,
              option, "0"])
    assert stop.value.code == 2
    assert f"argument {option}: expected a positive integer, got '0'" in err.getvalue()


def _synthetic_clip(root, frames, truth_lines):
    """``root/<name>.mp4`` + ``.txt`` from BGR frames; lossless-enough for a fixed decoding."""
    root.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                             (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    (root / "clip.txt").write_text("\n".join(truth_lines) + "\n")
    return root / "clip.mp4"


def test_clips_are_tracked_from_the_video_and_the_lost_flag_is_scored(tmp_path):
    """A video with its 1-based boxes: the short-term run's boxes are those of a Tracker with
    long_term=False fed the decoded frames, the lost flags are recorded per frame, and the
    lost-flag scores equal the shares computed here from them."""
    sequence = shared_path("data", "otb", "Football1")
    truth = np.loadtxt(sequence / "groundtruth_rect.txt", delimiter=",")[:15]
    frames = [cv2.imread(str(p)) for p in sorted((sequence / "img").glob("*.jpg"))[:15]]
    # The last five frames are black (the tracker flags them lost); three of their boxes are
    # moved into a far corner (failures whatever the tracker says).
    frames[10:] = [np.zeros_like(frames[0])] * 5
    truth[10:13, :2] = (300, 300)
    video = _synthetic_clip(tmp_path / "clips", frames, [",".join(map(str, row)) for row in truth])
    with contextlib.redirect_stderr(io.StringIO()):
        report = evaluate("clips", tmp_path / "clips", [MODEL], threads=1, short_term=True,
                          results=tmp_path / "r", reports=tmp_path / "p", progress=False)
    name = f"{MODEL}-short-term"
    run = tmp_path / "r" / "clips" / name
    boxes = _boxes(run / "clip.txt")
    flags = np.loadtxt(run / "lost" / "clip_lost.txt", dtype=int)
    assert boxes.shape == (15, 4) and flags.shape == (15,) and flags[0] == 0

    import tracker
    from tracker.clips import frames as video_frames

    trk = tracker.build_tracker(MODEL, long_term=False)
    decoded = list(video_frames(video, "video"))
    trk.init(decoded[0], tuple(truth[0] - [1, 1, 0, 0]))
    results = [trk.update(frame) for frame in decoded[1:]]
    np.testing.assert_allclose(boxes[1:], [np.add(r.box, [1, 1, 0, 0]) for r in results], atol=1e-3)
    assert flags[1:].tolist() == [int(r.lost) for r in results]

    failed = ious(boxes[1:], truth[1:]) < 0.1
    flagged = flags[1:].astype(bool)
    assert failed.sum() >= 3 and flagged[9:].all()
    scores = report[name]
    assert scores.lost_precision == pytest.approx((flagged & failed).sum() / flagged.sum())
    assert scores.lost_recall == pytest.approx((flagged & failed).sum() / failed.sum())
    assert scores.lost_recall == 1.0  # every failure is on a black frame, all flagged
    assert report.header()[6:8] == ["lost: IoU<0.1", "IoU<0.1: lost"]
    assert (report.experiment, report.frames) == ("clips", 15)


def test_a_clip_shorter_than_its_annotations_is_a_one_line_error(tmp_path):
    frame = np.full((60, 80, 3), 90, np.uint8)
    frame[20:40, 30:50] = 200
    _synthetic_clip(tmp_path / "clips", [frame] * 4, ["31,21,20,20"] * 6)
    code, out, err = _cli("accuracy", "--dataset", "clips", "--root", tmp_path / "clips",
                          "--model", MODEL, "--results", tmp_path / "r", "--reports", tmp_path / "p")
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].endswith("has 4 frames but "
                                                  f"{tmp_path / 'clips' / 'clip.txt'} annotates 6")


def test_results_tracked_with_other_settings_are_refused_naming_the_differences(
        tmp_path, monkeypatch):
    """Changed defaults must not pass off old results as today's: the stored settings are
    compared on every run and on merge; a folder without settings (older runs) is refused too."""
    _synthetic_otb(tmp_path / "otb", [f"{41 + 3 * i},41,40,30" for i in range(4)])
    common = ["--dataset", "otb", "--root", tmp_path / "otb", "--model", MODEL,
              "--results", tmp_path / "r", "--reports", tmp_path / "p"]
    assert _cli("accuracy", *common, *ONE_THREAD)[0] == 0
    settings_file = tmp_path / "r" / "OTB" / f"{MODEL}.settings.json"
    stored = json.loads(settings_file.read_text())
    assert stored["backend"] == "torch" and stored["raw_boxes"] is False
    assert stored["config"]["tracking"]["hold_threshold"] == 0.75
    assert stored["config"]["tracking"]["center_bias"] == [1.29, 1.37]

    changed = get_config(MODEL).with_tracking(hold_threshold=0.5)
    monkeypatch.setattr(accuracy, "get_config", lambda name: changed)
    for command in ("accuracy", "merge"):
        code, out, err = _cli(command, *common)
        assert (code, out, err.count("\n")) == (2, "", 1), err
        assert f"the results of {MODEL} in {tmp_path / 'r' / 'OTB' / MODEL} were tracked with " \
               "other settings (config.tracking.hold_threshold: 0.75 -> 0.5)" in err
        assert f"{MODEL}.settings.json beside it" in err

    monkeypatch.undo()
    settings_file.unlink()
    code, _, err = _cli("accuracy", *common)
    assert code == 2 and "were tracked before the settings were recorded" in err
    assert not settings_file.exists()

    shutil.rmtree(tmp_path / "r" / "OTB" / MODEL)
    code, _, err = _cli("accuracy", *common, "--short-term", *ONE_THREAD)
    assert code == 0, err
    assert not settings_file.exists()
    short_term = json.loads((tmp_path / "r" / "OTB" / f"{MODEL}-short-term.settings.json")
                            .read_text())
    assert short_term["config"]["tracking"]["long_term"] is False
