"""The task runner with real processes: success paths, logs, argv, environment, staging."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from common.plan.records import DataTransfer
from pilot.runner.result import TaskResult
from tests.pilot.runner_plans import PY, module, one_module, plan, run, script, tray

SUMMARY_KEYS = {"status", "class", "kind", "rule", "reason", "resources"}


def _data(url: str, local: str, movement: str, transfer: str = "yes") -> DataTransfer:
    return DataTransfer(url=url, local=local, movement=movement, transfer=transfer,
                        path=f"data[{local}]")


async def test_success_stages_in_runs_and_stages_out_verified(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "gcd.txt").write_text("geometry\n")
    prog = script(tmp_path, "gen.py", """
        import sys
        gcd = open("gcd.txt").read()
        with open(sys.argv[1], "w") as out:
            out.write("events from " + gcd)
        print("generated", sys.argv[1])
    """)
    task = plan([tray([module("gen", [PY, prog, "out.i3"])])],
                task_data=[_data(str(store / "gcd.txt"), "gcd.txt", "input"),
                           _data(f"file://{store}/results/out.i3", "out.i3", "output")])
    result = await run(task, tmp_path / "work")

    assert result.status == "complete", result.reason
    assert result.summary() == {"status": "complete", "class": None, "kind": None,
                                "rule": None, "reason": None, "resources": result.resources}
    assert set(result.summary()) == SUMMARY_KEYS
    json.dumps(result.summary())  # the pinned last line must serialise as is
    produced = (store / "results" / "out.i3").read_bytes()
    assert produced == b"events from geometry\n"
    [out] = result.outputs
    assert out.ok and out.size == len(produced)
    assert out.sha512 == hashlib.sha512(produced).hexdigest()
    [inp] = result.inputs
    assert inp.ok and inp.local == "gcd.txt" and inp.size == 9
    workdir = Path(result.workdir)
    assert workdir == tmp_path / "work" / "20001_7_generate_0"
    assert "generated out.i3" in Path(result.stdout).read_text()
    log = Path(result.stdlog).read_text()
    assert "stage-in" in log and "stage-out" in log and "exit code 0" in log
    assert result.modules[0].exit_code == 0 and result.modules[0].signal is None
    assert result.modules[0].start <= result.modules[0].end
    assert {"cpu", "memory", "disk", "time"} <= set(result.resources)
    assert result.resources["disk"] > 0 and result.resources["time"] > 0


async def test_stdout_stderr_captured_and_streamed(tmp_path: Path) -> None:
    prog = script(tmp_path, "talk.py", """
        import sys
        for i in range(3):
            print("out line", i, flush=True)
            print("err line", i, file=sys.stderr, flush=True)
    """)
    chunks: list[tuple[str, str]] = []

    async def callback(name: str, text: str) -> None:
        chunks.append((name, text))

    result = await run(one_module([PY, prog]), tmp_path, log_callback=callback)
    assert result.status == "complete"
    expected_out = "".join(f"out line {i}\n" for i in range(3))
    expected_err = "".join(f"err line {i}\n" for i in range(3))
    assert Path(result.stdout).read_text() == expected_out
    assert Path(result.stderr).read_text() == expected_err
    streamed = {name: "".join(t for n, t in chunks if n == name) for name in ("stdout", "stderr")}
    assert streamed == {"stdout": expected_out, "stderr": expected_err}
    assert all(text.endswith("\n") for _, text in chunks)
    assert "running module m" in "".join(t for n, t in chunks if n == "stdlog")


async def test_a_failing_callback_never_fails_the_task(tmp_path: Path) -> None:
    async def broken(name: str, text: str) -> None:
        raise ConnectionError("server gone")

    result = await run(one_module([PY, "-c", "print('hi')"]), tmp_path, log_callback=broken)
    assert result.status == "complete"
    assert Path(result.stdout).read_text() == "hi\n"


async def test_argument_with_spaces_stays_one_argv_element(tmp_path: Path) -> None:
    prog = script(tmp_path, "echo.py", "import json, sys; print(json.dumps(sys.argv[1:]))")
    args = ["two words", "$(not a macro)", "semi;colon", "*", "--x=a b"]
    result = await run(one_module([PY, prog, *args]), tmp_path)
    assert json.loads(Path(result.stdout).read_text()) == args
    assert result.modules[0].argv == [PY, prog, *args]


async def test_env_clear_whitelist(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FRAZIL_TEST_SECRET", "s3cret")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    prog = script(tmp_path, "env.py", """
        import json, os
        print(json.dumps({k: os.environ.get(k) for k in
                          ("FRAZIL_TEST_SECRET", "CUDA_VISIBLE_DEVICES", "PYTHONNOUSERSITE")}))
    """)
    task = plan([tray([module("clear", [PY, prog]),
                       module("keep", [PY, prog], env_clear=False)])])
    result = await run(task, tmp_path)
    cleared, kept = [json.loads(line) for line in Path(result.stdout).read_text().splitlines()]
    assert cleared == {"FRAZIL_TEST_SECRET": None, "CUDA_VISIBLE_DEVICES": "1",
                       "PYTHONNOUSERSITE": "1"}
    assert kept["FRAZIL_TEST_SECRET"] == "s3cret"


async def test_shell_variables_in_args_come_from_the_module_environment(tmp_path: Path,
                                                                        monkeypatch) -> None:
    monkeypatch.setenv("FRAZIL_TEST_DIR", "/data/x")
    envsh = script(tmp_path, "envsh.sh", """
        export SROOT=/opt/sroot
        exec "$@"
    """)
    prog = script(tmp_path, "echo.py", "import json, sys; print(json.dumps(sys.argv[1:]))")
    task = plan([tray([
        module("direct", [PY, prog, "${FRAZIL_TEST_DIR}/f", "$UNSET_VAR_X"], env_clear=False),
        module("shell", ["/bin/sh", envsh, PY, prog, "--gcd=$SROOT/gcd"],
               env_shell=["/bin/sh", envsh]),
    ])])
    result = await run(task, tmp_path)
    direct, shell = [json.loads(x) for x in Path(result.stdout).read_text().splitlines()]
    assert direct == ["/data/x/f", "$UNSET_VAR_X"]
    assert shell == ["--gcd=/opt/sroot/gcd"]
    assert "UNSET_VAR_X" in Path(result.stdlog).read_text()


async def test_configs_written_as_json_and_stdin_fed(tmp_path: Path) -> None:
    reader = "import json,sys; print(json.load(open('cfg.json'))['n'] * 2); print(sys.stdin.read())"
    task = one_module([PY, "-c", reader], configs={"cfg.json": {"n": 21}})
    result = await run(task, tmp_path)
    assert Path(result.stdout).read_text().split("\n")[0] == "42"
    legacy = one_module([PY, "-"], stdin="print('from stdin')\n")
    result = await run(legacy, tmp_path)
    assert result.status == "complete"
    assert Path(result.stdout).read_text() == "from stdin\n"


async def test_tray_iterations_run_in_order_with_scoped_data(tmp_path: Path) -> None:
    store = tmp_path / "store"
    trays = []
    for i in range(3):
        prog = [PY, "-c", f"open('it{i}.txt','w').write('{i}'); print('iteration {i}')"]
        trays.append(tray([module(f"m{i}", prog)], iteration=i,
                          data=[_data(f"{store}/it{i}.txt", f"it{i}.txt", "output")]))
    result = await run(plan(trays), tmp_path / "w")
    assert result.status == "complete"
    assert Path(result.stdout).read_text() == "iteration 0\niteration 1\niteration 2\n"
    assert [m.iteration for m in result.modules] == [0, 1, 2]
    assert [o.url for o in result.outputs] == [f"{store}/it{i}.txt" for i in range(3)]
    assert sorted(p.name for p in store.iterdir()) == ["it0.txt", "it1.txt", "it2.txt"]


async def test_maybe_input_missing_is_skipped(tmp_path: Path) -> None:
    task = one_module([PY, "-c", "import os; print(os.path.exists('opt.txt'))"],
                      data=[_data(str(tmp_path / "nope.txt"), "opt.txt", "input", "maybe"),
                            _data(str(tmp_path / "out"), "never.txt", "output", "maybe")])
    result = await run(task, tmp_path / "w")
    assert result.status == "complete", result.reason
    assert Path(result.stdout).read_text() == "False\n"
    assert result.inputs[0].skipped and result.outputs[0].skipped
    assert "skipped optional input opt.txt" in Path(result.stdlog).read_text()


async def test_missing_required_input_is_a_transfer_failure(tmp_path: Path) -> None:
    task = plan([tray([module("m", [PY, "-c", "print('must not run')"])])],
                steering_data=[_data(str(tmp_path / "absent.i3"), "absent.i3", "input")])
    result = await run(task, tmp_path / "w")
    _assert_transfer_failure(result, str(tmp_path / "absent.i3"))
    assert result.modules == []
    assert Path(result.stdout).exists() is False


async def test_missing_required_output_is_never_complete(tmp_path: Path) -> None:
    task = one_module([PY, "-c", "pass"],
                      data=[_data(str(tmp_path / "store" / "o.i3"), "o.i3", "output")])
    result = await run(task, tmp_path / "w")
    _assert_transfer_failure(result, str(tmp_path / "store" / "o.i3"))
    assert not result.outputs[0].ok


def _assert_transfer_failure(result: TaskResult, url: str) -> None:
    assert result.status == "reset", result.summary()
    assert result.failure_class == "non-physics" and result.kind == "transfer"
    assert url in result.reason


async def test_each_run_gets_a_new_attempt_dir(tmp_path: Path) -> None:
    task = one_module([PY, "-c", "print(1)"])
    first = await run(task, tmp_path)
    second = await run(task, tmp_path)
    assert Path(first.workdir).name == "20001_7_generate_0"
    assert Path(second.workdir).name == "20001_7_generate_1"
    assert os.listdir(first.workdir) != [] and Path(first.stdout).read_text() == "1\n"


async def test_bare_python_runs_where_only_python3_exists(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(PY)
    task = one_module(["python", "-c", "import sys; print('ok')"], env_clear=False)
    result = await run(task, tmp_path / "w", environ={"PATH": str(bindir)})
    assert result.status == "complete", result.summary()
    assert result.modules[0].argv[0] == str(bindir / "python3")
    assert str(bindir / "python3") in Path(result.stdlog).read_text()
