"""Module config -> argv, following IceProd's rules (reference §7.1).

IceProd joins everything into one ``sh`` line without quoting, so a value with
a space or a ``;`` is re-split or interpreted by the shell.  frazil builds an
argv list and executes it without a shell: a list element or a dict value is
always exactly one argument.  The *string* form of ``args`` keeps IceProd's
meaning ("split on whitespace") because that is what its users wrote it for.

Macro expansion is not done here (``common`` has a separate ``macros``
module); callers pass ``expand_token`` and this module decides *what* gets
expanded and *when*:

* a string ``args`` is expanded as a whole **before** it is split, as IceProd
  does, so ``$(input)`` holding several files gives several arguments and a
  macro with spaces inside (``$eval(1 + 2)``) is not cut in pieces;
* list elements, dict values and ``{"args", "kwargs"}`` members are expanded
  one by one and each stays one argument;
* nothing is expanded twice (a JSON string is decoded after its one expansion),
  so an escaped ``\\$`` that expanded to ``$`` is never re-read as a macro.
"""
from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENV_CLEAR_PASSTHROUGH",
    "ENV_CLEAR_PATH",
    "URL_SCHEMES",
    "ModuleCommand",
    "clean_environment",
    "format_args",
    "local_name",
    "module_command",
    "parse_args",
    "running_class_program",
    "src_url",
]

ExpandToken = Callable[[Any], Any]

#: Schemes that make ``src`` (or the first ``env_shell`` word) a file to
#: download first (reference §7.2's list; ``ftps`` and ``pelican`` included).
URL_SCHEMES: tuple[str, ...] = (
    "file", "http", "https", "ftp", "ftps", "gsiftp", "pelican", "osdf",
)
_URL_RE = re.compile(r"^(?:" + "|".join(URL_SCHEMES) + r"):", re.IGNORECASE)

#: Variables IceProd's ``env -i`` prefix passes through (reference §7.1).
ENV_CLEAR_PASSTHROUGH: tuple[str, ...] = (
    "OPENCL_VENDOR_PATH", "http_proxy", "TMP", "TMPDIR", "_CONDOR_SCRATCH_DIR",
    "CUDA_VISIBLE_DEVICES", "COMPUTE", "GPU_DEVICE_ORDINAL",
)
# IceProd's `env -i ... python x.py` has no PATH at all and still finds python
# only because glibc's execvp falls back to confstr(_CS_PATH) ("/bin:/usr/bin")
# when PATH is unset.  frazil executes argv itself, so it writes that fallback
# down explicitly (plus /usr/local/bin, where sites put python3 and friends):
# the runner resolves the same programs IceProd's would, and env_shell scripts
# (icetray-env) still set their own PATH on top.
ENV_CLEAR_PATH = "/usr/local/bin:/usr/bin:/bin"

_CLASS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass
class ModuleCommand:
    """One module's command: ``argv == env_shell + runner + args``.

    ``stdin`` carries the program of a legacy ``running_class`` module (the
    heredoc of IceProd's script).  ``downloads`` lists the URLs (``src``, first
    ``env_shell`` word) the runner must fetch into the work dir first; argv
    already names them by their local basename.
    """

    argv: list[str]
    env_shell: list[str]
    runner: list[str]
    args: list[str]
    stdin: str | None = None
    downloads: list[str] = field(default_factory=list)


def _identity(value: Any) -> Any:
    return value


def src_url(src: str) -> str | None:
    """The URL to download for ``src``, or None when it is a local path."""
    return src if _URL_RE.match(src.strip()) else None


def local_name(url: str) -> str:
    """File name a downloaded URL gets in the work dir (its basename)."""
    path = urllib.parse.urlsplit(url).path
    name = posixpath.basename(path.rstrip("/")) if path else ""
    if not name or name in (".", ".."):
        raise ValueError(f"cannot tell a file name from URL {url!r}: its path has no last component")
    return name


def _split_string_args(text: str) -> tuple[list[Any], dict[str, Any]]:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            decoded = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"args look like JSON (start with {stripped[0]!r}) but do not decode: {exc}") from None
        return _parse_expanded(decoded)
    return list(stripped.split()), {}


def _parse_expanded(value: Any) -> tuple[list[Any], dict[str, Any]]:
    """Parse a value that has already been through macro expansion."""
    if value is None:
        return [], {}
    if isinstance(value, str):
        return _split_string_args(value)
    if isinstance(value, Mapping):
        if set(value) == {"args", "kwargs"}:
            return _args_kwargs_form(value, _identity)
        return [], {str(k): v for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return _list_form(value, _identity)
    return [value], {}


def _args_kwargs_form(value: Mapping[str, Any], expand: ExpandToken) -> tuple[list[Any], dict[str, Any]]:
    raw_args, raw_kwargs = value["args"], value["kwargs"]
    if raw_args is None:
        raw_args = []
    elif not isinstance(raw_args, (list, tuple)):
        raw_args = [raw_args]
    if raw_kwargs is None:
        raw_kwargs = {}
    if not isinstance(raw_kwargs, Mapping):
        raise ValueError(f'args: "kwargs" must be an object, got {type(raw_kwargs).__name__}')
    for item in raw_args:
        if isinstance(item, (Mapping, list, tuple)):
            raise ValueError(f'args: "args" must hold plain values, got {type(item).__name__} {item!r}')
    return [expand(a) for a in raw_args], {str(k): expand(v) for k, v in raw_kwargs.items()}


def _list_form(value: list[Any] | tuple[Any, ...], expand: ExpandToken) -> tuple[list[Any], dict[str, Any]]:
    # IceProd parses each element again: nested lists flatten, objects add
    # keyword arguments.  Strings are NOT split: in frazil a list element is
    # exactly one argument.
    positional: list[Any] = []
    kwargs: dict[str, Any] = {}
    for item in value:
        if isinstance(item, Mapping):
            kwargs.update({str(k): expand(v) for k, v in item.items()})
        elif isinstance(item, (list, tuple)):
            more, more_kw = _list_form(item, expand)
            positional.extend(more)
            kwargs.update(more_kw)
        else:
            positional.append(expand(item))
    return positional, kwargs


def parse_args(args: Any, expand_token: ExpandToken = _identity) -> tuple[list[Any], dict[str, Any]]:
    """Split a module's ``args`` into (positional, keyword) arguments.

    Forms (reference §7.1): a string (split on whitespace; decoded first when
    it starts with ``{`` or ``[``), a list, a dict of keyword arguments, or
    ``{"args": [...], "kwargs": {...}}`` with exactly those two keys.  Values
    are returned as they are (not yet ``str()``-ed): see :func:`format_args`.
    """
    if args is None:
        return [], {}
    if isinstance(args, str):
        return _parse_expanded(expand_token(args))
    if isinstance(args, Mapping):
        if set(args) == {"args", "kwargs"}:
            return _args_kwargs_form(args, expand_token)
        return [], {str(k): expand_token(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return _list_form(args, expand_token)
    return [expand_token(args)], {}


def _text(value: Any) -> str:
    # IceProd str()s everything, so True is "True" and 1e6 is "1000000.0".
    return value if isinstance(value, str) else str(value)


def format_args(positional: list[Any], kwargs: Mapping[str, Any]) -> list[str]:
    """Positional arguments first, then ``--key=value`` (``-k=value`` for a
    one-letter key) in dict order; a None value gives the bare flag."""
    argv = [_text(a) for a in positional]
    for key, value in kwargs.items():
        if not key:
            raise ValueError("args: a keyword argument has an empty name")
        flag = ("-" if len(key) == 1 else "--") + key
        argv.append(flag if value is None else f"{flag}={_text(value)}")
    return argv


def _runner(src: str, python: str) -> tuple[list[str], list[str]]:
    downloads: list[str] = []
    url = src_url(src)
    if url is not None:
        downloads.append(url)
        src = local_name(url)
    if src.endswith(".py"):
        return [python, src], downloads
    if src.endswith(".sh"):
        return ["/bin/sh", src], downloads
    if src.startswith("/"):
        return [src], downloads
    return [src if src.startswith("./") else "./" + src], downloads


def _env_shell_words(env_shell: str | list[str], expand: ExpandToken) -> tuple[list[str], list[str]]:
    if isinstance(env_shell, str):
        expanded = expand(env_shell)
        words = _text(expanded).split() if expanded is not None else []
    elif isinstance(env_shell, (list, tuple)):
        words = [_text(expand(w)) for w in env_shell]
    else:
        raise ValueError(f"env_shell must be a string or a list of strings, got {type(env_shell).__name__}")
    downloads: list[str] = []
    if words and src_url(words[0]) is not None:
        downloads.append(words[0])
        words[0] = "./" + local_name(words[0])
    return words, downloads


def _check_literal(value: Any, where: str) -> None:
    """Only values whose repr() is a Python literal may go into the program."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(item, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_literal(key, where)
            _check_literal(item, where)
        return
    raise ValueError(f"running_class parameter {where}: a {type(value).__name__} cannot be passed to SetParameter")


def running_class_program(running_class: str, kwargs: Mapping[str, Any]) -> str:
    """The Python program fed on stdin for a legacy ``running_class`` module.

    Mirrors IceProd's heredoc (import the class, ``SetParameter`` each
    argument, ``Execute({})``) but writes every name and value with ``repr``
    so a value cannot break out of the program.
    """
    if not _CLASS_RE.match(running_class):
        raise ValueError(f"running_class must be a dotted name like 'pkg.mod.Class', got {running_class!r}")
    module_name, _, class_name = running_class.rpartition(".")
    lines = [
        "import importlib",
        f"_cls = getattr(importlib.import_module({module_name!r}), {class_name!r})",
        "_obj = _cls()",
    ]
    for key, value in kwargs.items():
        _check_literal(value, repr(key))
        lines.append(f"_obj.SetParameter({key!r}, {value!r})")
    lines.append("_obj.Execute({})")
    return "\n".join(lines) + "\n"


def module_command(
    *,
    src: str = "",
    args: Any = "",
    env_shell: str | list[str] = "",
    running_class: str = "",
    python: str = "python",
    expand_token: ExpandToken = _identity,
) -> ModuleCommand:
    """Build a module's argv: env_shell words, then the runner, then args."""
    src_text = _text(expand_token(src)).strip() if src else ""
    class_text = _text(expand_token(running_class)).strip() if running_class else ""
    shell, downloads = _env_shell_words(env_shell or "", expand_token)
    positional, kwargs = parse_args(args, expand_token)
    if src_text:
        runner, src_downloads = _runner(src_text, python)
        downloads.extend(src_downloads)
        formatted = format_args(positional, kwargs)
        return ModuleCommand(argv=shell + runner + formatted, env_shell=shell, runner=runner,
                             args=formatted, downloads=downloads)
    if class_text:
        if positional:
            raise ValueError(
                f"running_class {class_text!r} takes keyword arguments only "
                f"(SetParameter name=value), got positional {positional!r}")
        program = running_class_program(class_text, kwargs)
        runner = [python, "-"]
        return ModuleCommand(argv=shell + runner, env_shell=shell, runner=runner, args=[],
                             stdin=program, downloads=downloads)
    raise ValueError('module needs "src" (or legacy "running_class")')


def clean_environment(environ: Mapping[str, str], env_clear: bool = True) -> dict[str, str]:
    """The environment a module runs in.

    ``env_clear`` (the default) mirrors IceProd's ``env -i`` whitelist.  One
    deliberate difference: a pass-through variable that is *unset* stays unset
    (IceProd writes ``K=$K`` and so sets it to ""), because an empty
    ``CUDA_VISIBLE_DEVICES`` means "no GPU" while an unset one means "all".
    """
    if not env_clear:
        return dict(environ)
    env = {"PYTHONNOUSERSITE": "1", "SHELL": "/bin/sh", "PATH": ENV_CLEAR_PATH}
    for key in ENV_CLEAR_PASSTHROUGH:
        if key in environ:
            env[key] = environ[key]
    return env
