"""Module command lines: the tutorial's NuGen module and reference §7.1's verified outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.commands import (
    ENV_CLEAR_PATH,
    clean_environment,
    format_args,
    local_name,
    module_command,
    parse_args,
    src_url,
)

CVMFS = "/cvmfs/icecube.opensciencegrid.org/py3-v4.3.0"
NUGEN_SRC = f"{CVMFS}/metaprojects/icetray/v1.9.2/simprod-scripts/resources/scripts/nugen.py"
ENV_PATH = f"{CVMFS}/icetray-env icetray/v1.9.2"
STEERING = {"$steering(outfile)": "NuGen_0.i3.zst", "$steering(env_path)": ENV_PATH}
NUGEN_ARGV = [
    f"{CVMFS}/icetray-env", "icetray/v1.9.2", "python", NUGEN_SRC,
    "--FromEnergy=10000", "--ToEnergy=1000000", "--nevents=10000", "--outputfile=NuGen_0.i3.zst",
]


def replacer(table: dict[str, str]) -> Callable[[Any], Any]:
    """Stand-in for macro expansion: textual replacement of known macros."""
    def expand(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for macro, text in table.items():
            value = value.replace(macro, text)
        return value
    return expand


steering = replacer(STEERING)


# The tutorial's "these are all the same" slide (stray trailing spaces left out).
NUGEN_FORMS = {
    "dict": {"FromEnergy": 10000, "ToEnergy": 1000000, "nevents": 10000,
             "outputfile": "$steering(outfile)"},
    "list": ["--FromEnergy=10000", "--ToEnergy=1000000", "--nevents=10000",
             "--outputfile=$steering(outfile)"],
    "string": "--FromEnergy=10000 --ToEnergy=1000000 --nevents=10000 --outputfile=$steering(outfile)",
}


@pytest.mark.parametrize("form", sorted(NUGEN_FORMS))
def test_tutorial_nugen_forms_give_the_same_argv(form: str) -> None:
    cmd = module_command(src=NUGEN_SRC, args=NUGEN_FORMS[form], env_shell="$steering(env_path)",
                         expand_token=steering)
    assert cmd.argv == NUGEN_ARGV
    assert cmd.env_shell == NUGEN_ARGV[:2]
    assert cmd.runner == ["python", NUGEN_SRC]
    assert cmd.args == NUGEN_ARGV[4:]
    assert cmd.stdin is None and cmd.downloads == []


def test_tutorial_nugen_args_kwargs_form() -> None:
    args = {"args": ["$steering(outfile)"],
            "kwargs": {"FromEnergy": 10000, "ToEnergy": 1000000, "nevents": 10000}}
    cmd = module_command(src=NUGEN_SRC, args=args, env_shell=ENV_PATH, expand_token=steering)
    assert cmd.argv == NUGEN_ARGV[:4] + [
        "NuGen_0.i3.zst", "--FromEnergy=10000", "--ToEnergy=1000000", "--nevents=10000"]


# Reference §7.1 "verified output for all forms", with these runtime values.
VALUES = {"$(nevents)": "1000", "$(seed)": "1234500007", "$(iter)": "0",
          "$(input)": "input_7.txt gcd.i3.gz", "$(tray_p)": "iter0",
          "$(output)": "gen_7.i3.zst maybe_7.log scratch_7.i3", "$(job)": "7"}

runtime = replacer(VALUES)


VERIFIED = [
    ("gen.py", "--nevents $(nevents) --seed $(seed) -o out_$(iter).i3 $(input)",
     ["python", "gen.py", "--nevents", "1000", "--seed", "1234500007", "-o", "out_0.i3",
      "input_7.txt", "gcd.i3.gz"],
     "python gen.py --nevents 1000 --seed 1234500007 -o out_0.i3 input_7.txt gcd.i3.gz"),
    # A list element is ONE argument in frazil (IceProd's sh re-split it): the
    # joined line is still IceProd's verified line.
    ("http://example.org/scripts/run.sh", ["-a", "$(tray_p)", "$(output)"],
     ["/bin/sh", "run.sh", "-a", "iter0", "gen_7.i3.zst maybe_7.log scratch_7.i3"],
     "/bin/sh run.sh -a iter0 gen_7.i3.zst maybe_7.log scratch_7.i3"),
    ("/usr/bin/prog", {"n": "$(nevents)", "seed": "$(seed)", "flag": None, "o": "x.i3"},
     ["/usr/bin/prog", "-n=1000", "--seed=1234500007", "--flag", "-o=x.i3"],
     "/usr/bin/prog -n=1000 --seed=1234500007 --flag -o=x.i3"),
    ("prog2", {"args": ["pos1", "$(job)"], "kwargs": {"k": "v", "long": 3}},
     ["./prog2", "pos1", "7", "-k=v", "--long=3"],
     "./prog2 pos1 7 -k=v --long=3"),
    ("prog3.py", "{\"args\": [\"a\"], \"kwargs\": {\"b\": \"$(job)\"}}",
     ["python", "prog3.py", "a", "-b=7"],
     "python prog3.py a -b=7"),
]


@pytest.mark.parametrize(("src", "args", "argv", "line"), VERIFIED)
def test_reference_verified_outputs(src: str, args: Any, argv: list[str], line: str) -> None:
    cmd = module_command(src=src, args=args, expand_token=runtime)
    assert cmd.argv == argv
    assert " ".join(cmd.argv) == line


def test_argument_with_space_stays_one_element() -> None:
    cmd = module_command(src="/bin/echo", args=["two words", "a;rm -rf /"])
    assert cmd.argv == ["/bin/echo", "two words", "a;rm -rf /"]
    cmd = module_command(src="/bin/echo", args={"title": "hello world"})
    assert cmd.argv == ["/bin/echo", "--title=hello world"]


def test_string_is_expanded_before_it_is_split() -> None:
    # A macro with spaces inside must reach expansion whole.
    seen: list[Any] = []

    def expand(value: Any) -> Any:
        seen.append(value)
        return "--x 3" if value == "--x $eval(1 + 2)" else value

    assert parse_args("--x $eval(1 + 2)", expand) == (["--x", "3"], {})
    assert seen == ["--x $eval(1 + 2)"]


def test_json_string_is_not_expanded_twice() -> None:
    calls: list[Any] = []

    def expand(value: Any) -> Any:
        calls.append(value)
        # like an escaped "\\$(job)": the result holds a literal "$(job)"
        return value.replace("ESCAPED", "$(job)") if isinstance(value, str) else value

    assert parse_args('["ESCAPED", "-k"]', expand) == (["$(job)", "-k"], {})
    assert len(calls) == 1


@pytest.mark.parametrize(("args", "expected"), [
    ("", ([], {})),
    (None, ([], {})),
    ("   ", ([], {})),
    (42, ([42], {})),
    ("a  b\tc\n d", (["a", "b", "c", "d"], {})),
    ("[1, 2]", ([1, 2], {})),
    ('{"k": 1}', ([], {"k": 1})),
    (["a", ["b", "c"], {"k": "v"}], (["a", "b", "c"], {"k": "v"})),
    ({"args": "single", "kwargs": {}}, (["single"], {})),
    ({"args": None, "kwargs": None}, ([], {})),
    ({"args": ["a"], "kwargs": {}, "extra": 1}, ([], {"args": ["a"], "kwargs": {}, "extra": 1})),
])
def test_parse_args_forms(args: Any, expected: tuple[list[Any], dict[str, Any]]) -> None:
    assert parse_args(args) == expected


def test_format_args_str_values_like_iceprod() -> None:
    assert format_args(["p", 1], {"b": True, "x": 1.5, "big": 1e6, "f": None, "long": False}) == [
        "p", "1", "-b=True", "-x=1.5", "--big=1000000.0", "-f", "--long=False"]


@pytest.mark.parametrize(("args", "message"), [
    ("{not json", "do not decode"),
    ({"args": [], "kwargs": ["x"]}, '"kwargs" must be an object'),
    ({"args": [{"a": 1}], "kwargs": {}}, '"args" must hold plain values'),
    ({"": 1}, "empty name"),
])
def test_bad_args_name_the_problem(args: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        module_command(src="prog", args=args)


@pytest.mark.parametrize(("src", "runner"), [
    ("script.py", ["python3", "script.py"]),
    ("dir/script.sh", ["/bin/sh", "dir/script.sh"]),
    ("bin/prog", ["./bin/prog"]),
    ("./prog", ["./prog"]),
    ("/opt/prog", ["/opt/prog"]),
    ("/opt/tool.py", ["python3", "/opt/tool.py"]),
    ("https://example.org/a/b/tool.py?x=1", ["python3", "tool.py"]),
    ("gsiftp://gridftp.example.org/data/prog", ["./prog"]),
    ("osdf:///icecube/wipac/run.sh", ["/bin/sh", "run.sh"]),
])
def test_runner_rules(src: str, runner: list[str]) -> None:
    cmd = module_command(src=src, python="python3")
    assert cmd.runner == runner and cmd.argv == runner
    assert cmd.downloads == ([src] if src_url(src) else [])


def test_env_shell_url_and_list_forms() -> None:
    cmd = module_command(src="/bin/true", env_shell="http://x.org/env/env-shell.sh  combo/stable")
    assert cmd.env_shell == ["./env-shell.sh", "combo/stable"]
    assert cmd.downloads == ["http://x.org/env/env-shell.sh"]
    cmd = module_command(src="/bin/true", env_shell=["/opt/my env/run", "a b"])
    assert cmd.argv == ["/opt/my env/run", "a b", "/bin/true"]
    with pytest.raises(ValueError, match="env_shell must be"):
        module_command(src="/bin/true", env_shell=7)  # type: ignore[arg-type]


def test_url_helpers() -> None:
    assert src_url("file:///tmp/x.py") == "file:///tmp/x.py"
    assert src_url("/tmp/x.py") is None and src_url("x.py") is None
    assert local_name("https://h/p/file.tar.gz?sig=1") == "file.tar.gz"
    with pytest.raises(ValueError, match="no last component"):
        local_name("https://host/")


def test_module_without_src_or_class() -> None:
    with pytest.raises(ValueError, match='module needs "src" \\(or legacy "running_class"\\)'):
        module_command(args="--a")


def test_running_class_program_runs(tmp_path: Path) -> None:
    pkg = tmp_path / "legacy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mods.py").write_text(textwrap.dedent("""
        import json
        class Gen:
            def __init__(self):
                self.params = {}
            def SetParameter(self, key, value):
                self.params[key] = value
            def Execute(self, stats):
                print(json.dumps([self.params, stats]))
    """))
    tricky = "'); import os; os._exit(3) #"
    cmd = module_command(running_class="legacy.mods.Gen", python=sys.executable,
                         args={"nevents": 10, "name": tricky, "flag": None, "xs": [1, 2.5]})
    assert cmd.argv == [sys.executable, "-"] and cmd.stdin is not None
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(cmd.argv, input=cmd.stdin, capture_output=True, text=True, env=env, check=True)
    params, stats = json.loads(out.stdout)
    assert params == {"nevents": 10, "name": tricky, "flag": None, "xs": [1, 2.5]}
    assert stats == {}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"running_class": "os; import sys"}, "dotted name"),
    ({"running_class": "a.B", "args": "pos"}, "keyword arguments only"),
    ({"running_class": "a.B", "args": {"k": object()}}, "cannot be passed"),
])
def test_running_class_rejects_unsafe_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        module_command(**kwargs)


def test_clean_environment_whitelist() -> None:
    environ = {"HOME": "/home/u", "PATH": "/home/u/bin", "TMPDIR": "/scratch", "LD_PRELOAD": "evil.so",
               "CUDA_VISIBLE_DEVICES": "", "http_proxy": "http://proxy:3128"}
    assert clean_environment(environ) == {
        "PYTHONNOUSERSITE": "1", "SHELL": "/bin/sh", "PATH": ENV_CLEAR_PATH,
        "TMPDIR": "/scratch", "CUDA_VISIBLE_DEVICES": "", "http_proxy": "http://proxy:3128"}
    copy = clean_environment(environ, env_clear=False)
    assert copy == environ and copy is not environ


def test_cleaned_environment_still_finds_the_runner(tmp_path: Path) -> None:
    script = tmp_path / "hello.sh"
    script.write_text('echo "$SHELL $PYTHONNOUSERSITE ${HOME:-nohome}" "$@"\n')
    cmd = module_command(src=str(script), args=["a b"])
    out = subprocess.run(cmd.argv, env=clean_environment(os.environ), capture_output=True, text=True, check=True)
    assert out.stdout == "/bin/sh 1 nohome a b\n"
