"""Speed on a busy CPU: the busy background processes of ``speed --load``, the thread choice
of the onnxruntime backend (:class:`FastestSession`), the models' CPU policies, the
``spinning`` option and the ``--load`` / ``--steps`` benchmark options."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import tracker
from tests.conftest import shared_path
from tracker.backends import onnx_backend, thread_choice
from tracker.backends.thread_choice import FastestSession
from tracker.benchmark import load, speed, step_costs
from tracker.benchmark.__main__ import main
from tracker.zoo import CpuPolicy, cpu_policy, get_record


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _alive(process: subprocess.Popen) -> bool:
    return process.poll() is None


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- busy background processes -------------------------------------------------------------

def test_busy_processes_spin_while_the_block_runs_and_are_gone_after_it():
    with load.busy_processes(2) as processes:
        assert len(processes) == 2
        time.sleep(0.6)
        assert all(_alive(p) for p in processes)
        # Each one keeps a core busy: most of the elapsed time is its own CPU time.
        assert all(_cpu_seconds(p.pid) > 0.3 for p in processes)
    assert not any(_alive(p) for p in processes)


def test_busy_processes_are_stopped_on_ctrl_c():
    with pytest.raises(KeyboardInterrupt):
        with load.busy_processes(1) as processes:
            raise KeyboardInterrupt
    assert not _alive(processes[0])


def test_a_busy_process_stops_by_itself_after_its_time_bound():
    with load.busy_processes(1, seconds=0.3) as processes:
        assert processes[0].wait(timeout=10) == 0


def test_busy_processes_stop_when_the_process_that_started_them_is_killed():
    script = ("import sys, time; from tracker.benchmark import load\n"
              "with load.busy_processes(1) as ps:\n"
              "    print(ps[0].pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def test_no_busy_processes_for_load_zero():
    with load.busy_processes(0) as processes:
        assert processes == []


@pytest.mark.parametrize("count, seconds, message", [
    (-1, 10, "count: expected a whole number of busy processes >= 0, got -1"),
    (1.5, 10, "count: expected a whole number"),
    (True, 10, "count: expected a whole number"),
    (1, 0, "seconds: expected a bound in (0, 3600]"),
    (1, 7200, "seconds: expected a bound in (0, 3600]"),
])
def test_busy_processes_refuse_bad_arguments(count, seconds, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        with load.busy_processes(count, seconds):
            pass


# --- the thread choice -----------------------------------------------------------------------

class _FakeSession:
    """A session whose calls take ``seconds`` per batch item and return its name."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds, self.calls = name, seconds, 0

    def get_inputs(self):
        return ["inputs of " + self.name]

    def get_outputs(self):
        return ["outputs of " + self.name]

    def run(self, names, feeds):
        self.calls += 1
        time.sleep(self.seconds * max(len(v) for v in feeds.values()))
        return [self.name]


def _feeds(batch: int = 1):
    return {"kernel_0": np.zeros((batch, 1)), "x": np.zeros((batch, 3))}


def test_the_fastest_thread_count_takes_the_calls_and_a_change_of_load_is_noticed():
    one, two = _FakeSession("one", 0.004), _FakeSession("two", 0.001)
    fastest = FastestSession([one, two], [1, 2])
    assert fastest.get_inputs() == one.get_inputs() and fastest.get_outputs() == one.get_outputs()
    for _ in range(2 * thread_choice.PROBE_CALLS):
        fastest.run(["cls"], _feeds())
    assert (one.calls, two.calls) == (thread_choice.PROBE_CALLS,) * 2
    assert fastest.threads == 2
    for _ in range(thread_choice.PROBE_EVERY - 1):
        assert fastest.run(["cls"], _feeds()) == ["two"]
    assert one.calls == thread_choice.PROBE_CALLS
    # A busy core: two threads now take longer than one. The next round of trying notices.
    two.seconds = 0.008
    calls = 0
    while fastest.threads == 2:
        fastest.run(["cls"], _feeds())
        calls += 1
    # The round of trying is due at once; two threads lose once their history is slow enough.
    assert calls <= 1 + thread_choice.PROBE_CALLS + thread_choice.HISTORY
    # Rounds of trying: the first PROBE_EVERY calls after the change, then each round that
    # confirms the choice doubles the wait before the next one.
    answers = [fastest.run(["cls"], _feeds())[0] for _ in range(8 * thread_choice.PROBE_EVERY)]
    starts = [i for i, a in enumerate(answers) if a == "two" and (i == 0 or answers[i - 1] == "one")]
    assert all(answers[i:i + thread_choice.PROBE_CALLS] == ["two"] * thread_choice.PROBE_CALLS
               for i in starts)
    assert answers.count("two") == len(starts) * thread_choice.PROBE_CALLS
    gaps = [b - a - thread_choice.PROBE_CALLS for a, b in zip(starts, starts[1:])]
    assert gaps == [2 * thread_choice.PROBE_EVERY, 4 * thread_choice.PROBE_EVERY]
    assert fastest.threads == 1


def test_the_thread_choice_compares_time_per_batch_item():
    one, two = _FakeSession("one", 0.002), _FakeSession("two", 0.001)
    fastest = FastestSession([one, two], [1, 2])
    for batch in [1] * thread_choice.PROBE_CALLS + [4] * thread_choice.PROBE_CALLS:
        fastest.run(["cls"], _feeds(batch))
    assert fastest.threads == 2


def test_the_thread_choice_needs_two_sessions_one_per_count():
    with pytest.raises(ValueError, match="two or more sessions, one per thread count"):
        FastestSession([_FakeSession("one", 0.0)], [1])
    with pytest.raises(ValueError, match="one per thread count"):
        FastestSession([_FakeSession("one", 0.0), _FakeSession("two", 0.0)], [1])


@pytest.mark.parametrize("model", ["nanotrack-v1", "nanotrack-v2", "nanotrack-v3"])
def test_one_and_two_threads_compute_the_same_outputs_bit_for_bit(model):
    """What lets the thread choice change the count between calls without changing a box."""
    shared_path("weights", "nanotrack")
    config = tracker.get_config(model)
    rng = np.random.default_rng(0)
    z = rng.random((1, 3, 127, 127), dtype=np.float32) * 255
    x = rng.random((2, 3, 255, 255), dtype=np.float32) * 255
    one, two = (onnx_backend.load_published_nanotrack(config, threads) for threads in (1, 2))
    kernel = one.template(z)
    assert all(np.array_equal(a, b) for a, b in zip(kernel, two.template(z)))
    first, second = one.track(kernel, x), two.track(kernel, x)
    assert all(np.array_equal(first[name], second[name]) for name in first)


def test_trackers_on_the_default_and_on_fixed_threads_give_the_same_boxes():
    shared_path("weights", "nanotrack")
    clip = shared_path("data", "clips", "airplane-1.mp4")
    _, frames, box = speed.load_clip(clip, 40)
    default = tracker.build_tracker("nanotrack-v2", backend="onnxruntime")
    fixed = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", threads=1, spinning=False)
    assert isinstance(default._runner._search, FastestSession)
    default.init(frames[0], box)
    fixed.init(frames[0], box)
    for frame in frames[1:]:
        assert default.update(frame) == fixed.update(frame)


# --- CPU policies and options ----------------------------------------------------------------

def test_the_models_cpu_policies():
    for version in (1, 2, 3):
        assert get_record(f"nanotrack-v{version}").cpu == CpuPolicy((1, 2), True, torch_threads=1)
    assert get_record("siamrpnpp-alex").cpu == CpuPolicy(threads=(1, 2), spinning=False)
    assert tracker.describe("nanotrack-v2")["cpu"] == {"threads": [1, 2], "spinning": True,
                                                      "torch_threads": 1}
    custom = tracker.get_config("nanotrack-v2").__class__.from_dict(
        {**tracker.get_config("nanotrack-v2").to_dict(), "name": "my-nanotrack"})
    assert cpu_policy(custom) == CpuPolicy()


def test_a_policy_drops_thread_counts_above_the_usable_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert CpuPolicy(threads=(1, 2)).thread_counts() == (1,)
    assert CpuPolicy(threads=(2, 4)).thread_counts() == (2,)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert CpuPolicy(threads=(1, 2, 4, 8)).thread_counts() == (1, 2, 4)


def test_threads_and_spinning_reach_the_sessions():
    shared_path("weights", "nanotrack")
    fixed = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", threads=2, spinning=False)
    search = fixed._runner._search
    assert not isinstance(search, FastestSession)
    assert search.get_session_options().intra_op_num_threads == 2
    assert search.get_session_options().get_session_config_entry(
        "session.intra_op.allow_spinning") == "0"
    several = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", threads=[1, 2])
    assert isinstance(several._runner._search, FastestSession)
    for session in several._runner._search._sessions:
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
        assert options.get_session_config_entry("session.force_spinning_stop") == "1"


def test_spinning_threads_stop_when_a_run_returns():
    """Between a camera's frames the pool sleeps: left spinning, its second thread would burn
    most of the wait (about 25 of 33 ms at 30 frames/s when measured)."""
    frames, box = speed.generated_clip(12)
    trk = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", threads=2, spinning=True)
    trk.init(frames[0], box)
    for frame in frames[1:]:
        trk.update(frame)
    cpu_before = time.process_time()
    time.sleep(0.2)
    # Measured: 0.0003 s with the pool stopped, 0.036 s with it left spinning.
    assert time.process_time() - cpu_before < 0.01


@pytest.mark.parametrize("options, message", [
    ({"threads": 0}, "threads must be a whole number of at least 1 (or a list of them), got 0"),
    ({"threads": [1, "2"]}, "threads must be a whole number of at least 1 (or a list of them), got '2'"),
    ({"threads": True}, "threads must be a whole number"),
    ({"spinning": "yes"}, "spinning must be True or False, got 'yes'"),
])
def test_bad_thread_options_are_refused_by_name(options, message):
    shared_path("weights", "nanotrack")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tracker.build_tracker("nanotrack-v2", backend="onnxruntime", **options)


def test_the_torch_backend_refuses_spinning():
    with pytest.raises(ValueError, match="spinning applies to the onnxruntime backend"):
        tracker.build_tracker("nanotrack-v2", backend="torch", spinning=True)


# --- the benchmark options -------------------------------------------------------------------

def test_speed_under_load_reports_the_load_and_stops_its_processes(monkeypatch):
    started = []
    real = load.busy_processes

    @contextlib.contextmanager
    def recording(count, *args):
        with real(count, *args) as processes:
            started.append(processes)
            yield processes

    monkeypatch.setattr(speed, "busy_processes", recording)
    code, out, err = _cli("speed", "--model", "nanotrack-v2", "--backend", "onnxruntime",
                          "--frames", "3", "--threads", "2", "--load", "0,1", "--json")
    assert code == 0, err
    timings = json.loads(out)["timings"]
    assert sorted((t["backend"], t["load"]) for t in timings) == sorted(
        [("onnxruntime", 0), ("onnxruntime", 1), ("opencv", 0), ("opencv", 1)])
    ours = [t for t in timings if t["backend"] == "onnxruntime"]
    assert {t["session"] for t in ours} == {"fastest of 1,2, spinning"}
    assert [len(p) for p in started] == [0, 1]
    assert not any(_alive(p) for processes in started for p in processes)
    for t in ours:
        opencv = next(o for o in timings if o["backend"] == "opencv" and o["load"] == t["load"])
        assert t["vs_baseline"] == pytest.approx(t["fps"] / opencv["fps"], rel=1e-12)


def test_speed_with_fixed_threads_and_no_spinning_labels_its_sessions():
    shared_path("weights", "nanotrack")
    code, out, err = _cli("speed", "--model", "nanotrack-v2", "--backend", "onnxruntime,torch",
                          "--frames", "2", "--threads", "1", "--thread-choice", "fixed",
                          "--spinning", "off", "--no-baseline", "--json")
    assert code == 0, err
    sessions = {t["backend"]: t["session"] for t in json.loads(out)["timings"]}
    assert sessions == {"onnxruntime": "1 fixed, sleeping", "torch": "-"}


def test_steps_time_each_stage_and_sum_to_the_step():
    shared_path("weights", "nanotrack")
    code, out, err = _cli("speed", "--steps", "--model", "nanotrack-v2", "--backend", "onnxruntime",
                          "--frames", "5", "--threads", "1", "--json")
    assert code == 0, err
    (costs,) = json.loads(out)
    assert costs["frames"] == 5 and costs["load"] == 0 and costs["threads"] == 1
    assert list(costs["stage_ms"]) == list(step_costs.STAGES)
    assert all(v > 0 for v in costs["stage_ms"].values())
    # The median of sums is not the sum of medians, but both lie between the extremes.
    assert max(costs["stage_ms"].values()) < costs["step_ms"] < 4 * sum(costs["stage_ms"].values())


def test_steps_write_markdown_with_the_command(tmp_path):
    shared_path("weights", "nanotrack")
    target = tmp_path / "steps.md"
    code, out, err = _cli("speed", "--steps", "--model", "nanotrack-v2", "--backend", "onnxruntime",
                          "--frames", "2", "--threads", "1", "--load", "1", "--markdown", target)
    assert code == 0, err
    text = target.read_text()
    assert text.startswith("| tracker | backend | threads | load | session | crop ms |")
    assert "--load 1 --steps" in text and "| nanotrack-v2 | onnxruntime | 1 | 1 |" in text


@pytest.mark.parametrize("argv, message", [
    (["--load", "x"], "error: --load: expected comma-separated whole numbers such as 0,1,2, got 'x'"),
    (["--load", "-1"], "error: --load: expected comma-separated whole numbers"),
    (["--steps", "--targets", "2"], "error: --steps times one target; leave out --targets and --plot"),
])
def test_bad_load_and_steps_options_are_one_line_errors(argv, message):
    code, out, err = _cli("speed", "--frames", "2", *argv)
    assert code == 2 and err.strip().startswith(message) and len(err.strip().splitlines()) == 1


def test_measure_speed_refuses_bad_loads():
    with pytest.raises(ValueError, match=r"loads: expected one or more whole numbers >= 0, got \[-1\]"):
        speed.measure_speed(loads=[-1], frames=2)
    with pytest.raises(ValueError, match="thread_choice: expected 'model' or 'fixed'"):
        speed.SessionChoice("auto")


def test_commands_and_examples_set_the_models_torch_threads_unless_told():
    import torch

    from tracker.cli_args import apply_thread_policy

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert apply_thread_policy("siamfc-alexnet", "torch", None) is None
        assert torch.get_num_threads() == 2
        assert apply_thread_policy("nanotrack-v2", "onnxruntime", None) is None
        assert torch.get_num_threads() == 2
        assert apply_thread_policy("nanotrack-v2", "torch", None) == 1
        assert torch.get_num_threads() == 1
        assert apply_thread_policy("nanotrack-v2", "torch", 2) == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert tracker.describe("nanotrack-v3")["cpu"]["torch_threads"] == 1


def test_one_crop_of_nanotrack_v3_runs_its_published_head_with_the_same_outputs():
    """v3's batched head costs about 0.5 ms more at batch 1; one crop takes the published one."""
    shared_path("weights", "nanotrack")
    assert onnx_backend.load_published_nanotrack(tracker.get_config("nanotrack-v2"))._single is None
    runner = onnx_backend.load_published_nanotrack(tracker.get_config("nanotrack-v3"), 1)
    assert runner._single is not None
    rng = np.random.default_rng(1)
    kernel = runner.template(rng.random((1, 3, 127, 127), dtype=np.float32) * 255)
    x = rng.random((1, 3, 255, 255), dtype=np.float32) * 255
    calls = []
    for graph in (runner._single, runner._search):
        real = graph.run
        graph.run = lambda names, feeds, real=real, graph=graph: calls.append(graph) or real(names, feeds)
    single = runner.track(kernel, x)
    batched = runner.track(kernel, np.concatenate([x, x]))
    assert calls == [runner._single, runner._search]
    assert all(np.array_equal(single[n][0], batched[n][0]) for n in single)
