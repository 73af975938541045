"""Config builders shared by the config tests, and tests of the builders themselves."""
from __future__ import annotations

import copy
import json
import pathlib
import re
from typing import Any


def minimal_task(name: str = "t", **extra: Any) -> dict[str, Any]:
    """A task with one tray and one module: the smallest thing that validates."""
    task: dict[str, Any] = {"name": name, "trays": [{"modules": [{"src": "run.py"}]}]}
    task.update(extra)
    return task


def config_with(*tasks: dict[str, Any], version: Any = 3.2) -> dict[str, Any]:
    return {"version": version, "tasks": [copy.deepcopy(t) for t in tasks]}


def _join_broken_strings(block: str) -> str:
    """Undo the slide layout that breaks long JSON strings over two lines.

    A line that ends inside a string (odd number of unescaped quotes so
    far) continues on the next line; the break and the spaces around it
    were added by the slide, not part of the value.
    """
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        line = pending + (line.lstrip() if pending else line)
        if len(re.findall(r'(?<!\\)"', line)) % 2:
            pending = line.rstrip()
            continue
        pending = ""
        out.append(line)
    return "\n".join(out + ([pending] if pending else []))


def tutorial_config(shared_dir: pathlib.Path) -> dict[str, Any]:
    """The 2024 tutorial's NuGen dataset, assembled from its slides.

    The Submit slide's config, its ``steering.parameters`` merged with the
    second parameters block, and the ``generation`` task block.
    """
    text = (shared_dir / "reference" / "iceprod-tutorial-2024.txt").read_text()
    blocks = [_join_broken_strings(b) for b in re.findall(r"```\n(.*?)```", text, re.S)]
    submit = next(b for b in blocks if '"version":3' in b)
    params = next(b for b in blocks if '"subdirectory"' in b and '"steering"' in b)
    tasks = next(b for b in blocks if b.lstrip().startswith('"tasks"') and '"NuGen"' in b)
    config: dict[str, Any] = json.loads(submit)
    extra = json.loads(params.rstrip().rstrip(","))
    config["steering"]["parameters"].update(extra["steering"]["parameters"])
    config["tasks"] = json.loads("{" + tasks)["tasks"]
    return config


def test_broken_slide_strings_are_joined() -> None:
    block = '{"a": "one/\n  two",\n "b": 1}'
    assert json.loads(_join_broken_strings(block)) == {"a": "one/two", "b": 1}


def test_tutorial_config_is_assembled_from_all_three_slides(shared_dir: pathlib.Path) -> None:
    config = tutorial_config(shared_dir)
    params = config["steering"]["parameters"]
    assert config["version"] == 3
    assert params["GENERATION::n_events"] == 6000  # Submit slide
    assert params["TARGET"] == ("gsiftp://gridftp.icecube.wisc.edu/data/sim/IceCube/2023/filtered/"
                                "level2/neutrino-generator/$(dataset)/$steering(subdirectory)")
    module = config["tasks"][0]["trays"][0]["modules"][0]
    assert module["src"].endswith("/v1.9.2/simprod-scripts/resources/scripts/nugen.py")
    assert module["args"]["outputfile"] == "$steering(outfile)"
