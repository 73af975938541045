"""Shell-style variables left in a module's arguments (DESIGN.md §3.3 F3).

Macro expansion leaves ``$VAR`` / ``${VAR}`` alone when VAR is no macro name,
for the module's environment to resolve, as IceProd's ``sh`` script did. With
no shell, the runner resolves them itself: first from the module's (cleaned)
environment, then — only if some remain and the module has an ``env_shell`` —
from the environment that ``env_shell`` sets up (``$SROOT``, ``$I3_BUILD``),
captured by running ``env_shell env -0`` once. Unknown variables stay literal
(a shell would silently make them empty) and are named in the stdlog.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Callable, Mapping

Wrap = Callable[[list[str]], list[str]]
"""Puts a command in the task's container (the environment is the image's, not the host's)."""

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def referenced(argv: list[str]) -> set[str]:
    names: set[str] = set()
    for arg in argv:
        for match in _VAR.finditer(arg):
            names.add(match.group(1) or match.group(2))
    return names


def substitute(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """Replace variables that ``env`` defines; leave the rest as written."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env[name] if name in env else match.group(0)

    return [_VAR.sub(one, arg) if "$" in arg else arg for arg in argv]


async def env_shell_environment(env_shell: list[str], env: Mapping[str, str], cwd: Path,
                                timeout: float = 300.0, wrap: Wrap | None = None) -> dict[str, str]:
    """The environment ``env_shell`` gives the program it wraps (raises OSError/RuntimeError)."""
    command = [*env_shell, "env", "-0"]
    proc = await asyncio.create_subprocess_exec(
        *(wrap(command) if wrap else command), cwd=cwd, env=dict(env),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"env_shell did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"env_shell exited with status {proc.returncode}")
    result: dict[str, str] = {}
    for item in out.decode(errors="replace").split("\0"):
        key, sep, value = item.partition("=")
        if sep and key:
            result[key] = value
    return result


async def resolve(argv: list[str], env_shell: list[str], env: Mapping[str, str],
                  cwd: Path, wrap: Wrap | None = None) -> tuple[list[str], set[str], str | None]:
    """argv with variables substituted, the names left unresolved, and any capture error."""
    names = referenced(argv)
    if not names:
        return argv, set(), None
    missing = {name for name in names if name not in env}
    if not missing or not env_shell:
        return substitute(argv, env), missing, None
    try:
        shell_env = await env_shell_environment(env_shell, env, cwd, wrap=wrap)
    except (OSError, RuntimeError) as exc:
        return substitute(argv, env), missing, f"{type(exc).__name__}: {exc}"
    merged = {**env, **shell_env}
    return substitute(argv, merged), {n for n in names if n not in merged}, None
