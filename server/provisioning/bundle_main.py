"""Bootstrap of the pilot bundle (copied into the zipapp as ``__main__.py``).

Runs ``frazil pilot`` from the bundle: compiled packages come from a cache
directory when this interpreter matches the build, pure-Python modes are
switched on otherwise, and a missing required package is one clear line.
See server/provisioning/bundle.py. Only the standard library is used here.
"""
import hashlib
import json
import os
import sys
import sysconfig
import tempfile
import zipfile

ARCHIVE = os.path.dirname(os.path.abspath(__file__))


def _manifest():
    with zipfile.ZipFile(ARCHIVE) as archive:
        return json.loads(archive.read("bundle.json"))


def _cache_dir(tag):
    digest = hashlib.sha256(str(os.path.getsize(ARCHIVE)).encode() + str(os.path.getmtime(ARCHIVE)).encode())
    base = os.environ.get("FRAZIL_BUNDLE_CACHE") or os.environ.get("_CONDOR_SCRATCH_DIR") or tempfile.gettempdir()
    return os.path.join(base, f".frazil-bundle-{os.getuid()}-{tag}-{digest.hexdigest()[:12]}")


def _extract(tag):
    """Unpack ``_compiled/<tag>/`` once (atomically: a half-written cache is never used)."""
    target = _cache_dir(tag)
    if not os.path.isdir(target):
        partial = f"{target}.{os.getpid()}"
        prefix = f"_compiled/{tag}/"
        with zipfile.ZipFile(ARCHIVE) as archive:
            for info in archive.infolist():
                if info.filename.startswith(prefix) and not info.is_dir():
                    path = os.path.join(partial, info.filename[len(prefix):])
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with archive.open(info) as src, open(path, "wb") as out:
                        out.write(src.read())
                    os.chmod(path, 0o755 if ".so" in info.filename else 0o644)
        try:
            os.rename(partial, target)
        except OSError:  # another pilot on this node unpacked it first
            pass
    return target


def main():
    manifest = _manifest()
    here = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    compiled = here == manifest["tag"] and not os.environ.get("FRAZIL_BUNDLE_PURE")
    if compiled:
        sys.path.insert(0, _extract(here))
    else:
        for variable in manifest["fallbacks"].values():
            os.environ[variable] = "1"
    try:
        import common.version
        common.version.__version__ = f"{manifest['version']}+bundle.{here if compiled else 'pure'}"
        from pilot import cli
    except ImportError as exc:
        missing = sorted(set(manifest["compiled"]) - set(manifest["fallbacks"]))
        runs = "FRAZIL_BUNDLE_PURE is set" if here == manifest["tag"] else f"this worker runs {here}"
        print(f"frazil pilot (bundle): cannot start: {exc}. This bundle's compiled packages "
              f"({', '.join(missing)}) were built for {manifest['tag']}; {runs}. "
              "Build the bundle with a matching Python (make pilot-bundle PYTHON=...), or use the "
              "container or shared-file-system bootstrap (docs/operators.md).", file=sys.stderr)
        return 2
    if not compiled:
        print(f"frazil pilot (bundle): pure-Python mode for {', '.join(manifest['fallbacks'])} "
              f"(built for {manifest['tag']}, running on {here})", file=sys.stderr)
    import argparse
    from common.cli_errors import CliError
    parser = argparse.ArgumentParser(prog="frazil-pilot.pyz", description="frazil pilot (self-contained bundle)")
    cli.add_arguments(parser)
    args = parser.parse_args()
    try:
        return int(cli.run(args) or 0)
    except CliError as exc:
        print(f"frazil pilot: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
