"""``make pilot-bundle``: one file that runs ``frazil pilot`` on a grid worker
where frazil is not installed (no root, no pip, no container).

    python -m server.provisioning.bundle --output build/frazil-pilot.pyz
    ./frazil-pilot.pyz --server URL --token-file F     # same flags as `frazil pilot`

A zipapp (``python -m zipapp``) of the pilot's code (``common/``, ``pilot/``)
and the third-party packages it imports, found by importing the pilot in a
clean interpreter and listing what came from site-packages. Python cannot
import compiled extension modules from a zip, so packages with ``.so`` files
are stored twice: their Python files at the root (several have a pure-Python
mode: aiohttp, multidict, yarl, frozenlist, propcache) and the whole package
under ``_compiled/<tag>/``. At start the bootstrap (``__main__.py``):

* if the worker's interpreter matches the build's tag (``cpython-311-linux-x86_64``),
  extracts ``_compiled/`` once into a cache directory and puts it first on
  ``sys.path``: the pilot runs exactly as installed;
* otherwise switches the packages that have one to their pure-Python mode,
  and if a package without a fallback (psutil, pycurl, ...) is missing, exits
  with one line naming the packages, the build's tag and the worker's tag.

The pilot's registration carries the outcome in its ``version`` field
(``0.1.0+bundle.cpython-311-linux-x86_64`` or ``0.1.0+bundle.pure``), so
``GET /pilots`` and the admin page show which pilots run without their
compiled speed-ups.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP_PACKAGES = ("common", "pilot")
PURE_FALLBACKS = {"aiohttp": "AIOHTTP_NO_EXTENSIONS", "multidict": "MULTIDICT_NO_EXTENSIONS",
                  "yarl": "YARL_NO_EXTENSIONS", "frozenlist": "FROZENLIST_NO_EXTENSIONS",
                  "propcache": "PROPCACHE_NO_EXTENSIONS"}
"""Packages whose compiled parts are optional, and the variable that turns them off."""
SKIP_TOPS = ("_distutils_hack", "__editable__", "_virtualenv", "pip", "setuptools", "pkg_resources")
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")
ENTRY_IMPORTS = "import pilot.cli, pilot.pilot"

# What the pilot imports from site-packages: printed as JSON {top-level name: path}.
PROBE = f"""
import json, sys, site, sysconfig
{ENTRY_IMPORTS}
roots = {{sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}}
found = {{}}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if not path:
        continue
    for root in roots:
        if path.startswith(root.rstrip("/") + "/"):
            top = path[len(root.rstrip("/")) + 1:].split("/")[0]
            found[top] = root.rstrip("/") + "/" + top
print(json.dumps(found))
"""


def build_tag() -> str:
    return f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"


def third_party(python: str) -> dict[str, Path]:
    """Top-level files/dirs of site-packages that the pilot imports, found by importing it."""
    done = subprocess.run([python, "-c", PROBE], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise SystemExit(f"pilot-bundle: importing the pilot failed:\n{done.stderr.strip()}")
    found = {top: Path(path) for top, path in json.loads(done.stdout.splitlines()[-1]).items()}
    return {top: path for top, path in found.items() if not top.startswith(SKIP_TOPS)}


def _has_compiled(path: Path) -> bool:
    if path.is_file():
        return path.name.endswith(COMPILED_SUFFIXES)
    return any(p.name.endswith(COMPILED_SUFFIXES) or ".so." in p.name for p in path.rglob("*"))


def _copy(src: Path, dest: Path, *, compiled: bool) -> None:
    """Copy a package or module; without ``compiled`` only non-binary files."""
    if src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or n.endswith(".pyc")
                or (not compiled and (n.endswith(COMPILED_SUFFIXES) or ".so." in n))]
    shutil.copytree(src, dest, ignore=ignore, dirs_exist_ok=True)


def stage(staging: Path, python: str) -> dict[str, object]:
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for package in APP_PACKAGES:
        _copy(REPO / package, staging / package, compiled=False)
    tag = build_tag()
    compiled, pure = [], []
    for top, path in sorted(third_party(python).items()):
        if _has_compiled(path):
            compiled.append(top)
            _copy(path, staging / "_compiled" / tag / path.name, compiled=True)
            libs = path.parent / f"{top}.libs"  # auditwheel's vendored shared libraries
            if libs.is_dir():
                _copy(libs, staging / "_compiled" / tag / libs.name, compiled=True)
            if path.is_dir():
                _copy(path, staging / path.name, compiled=False)  # the pure-Python part, for the fallback
        else:
            pure.append(top)
            _copy(path, staging / path.name, compiled=False)
    from common.version import __version__
    manifest: dict[str, object] = {"version": __version__, "tag": tag, "compiled": compiled, "pure": pure,
                                   "fallbacks": PURE_FALLBACKS}
    (staging / "bundle.json").write_text(json.dumps(manifest, indent=1))
    shutil.copy2(Path(__file__).with_name("bundle_main.py"), staging / "__main__.py")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the self-contained pilot bundle (a zipapp)")
    parser.add_argument("--output", default="build/frazil-pilot.pyz")
    parser.add_argument("--python", default="/usr/bin/env python3", help="interpreter line of the bundle")
    args = parser.parse_args(argv)
    output = Path(args.output).resolve()
    staging = output.parent / (output.stem + ".staging")
    manifest = stage(staging, sys.executable)
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "zipapp", str(staging), "-o", str(output), "-p", args.python, "-c"],
                   check=True)
    shutil.rmtree(staging)
    size = output.stat().st_size / 1e6
    print(f"{output}: {size:.1f} MB, frazil {manifest['version']} for {manifest['tag']}")
    print(f"  compiled (used when the worker's Python is {manifest['tag']}): {', '.join(manifest['compiled'])}")
    print(f"  pure-Python fallbacks elsewhere: {', '.join(PURE_FALLBACKS)}; the others are required")
    return 0


if __name__ == "__main__":
    sys.exit(main())
