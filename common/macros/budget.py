"""A time and size budget for a whole piece of config work (F4 bounds one
value; this bounds all of them together).

Each value's expansion is bounded on its own (``context.MAX_WORK`` characters,
``MAX_PASSES``); a config with thousands of values that each stay just under
those bounds (parameters referencing each other exponentially, huge
``$eval``s) still took tens of seconds to check. A :class:`Budget` opened
with :func:`budget` around a submission check, a task plan or a job's
requirements is charged by every expansion inside it — characters produced,
plus the clock — and raises :class:`BudgetExceeded` once either runs out.
It is NOT a ``ValueError``, so no per-value handler turns it into a
diagnostic: it ends the whole work, and the caller says so (a 400 at submit,
an action error at materialization).
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass
from typing import Iterator

DEFAULT_SECONDS = 10.0
DEFAULT_WORK = 20_000_000
"""Characters produced by expansion in one budget."""


class BudgetExceeded(Exception):
    """The config needs more work than its budget allows (the text says which)."""


@dataclass
class Budget:
    seconds: float
    work: int
    deadline: float = 0.0
    spent: int = 0

    def charge(self, amount: int = 0) -> None:
        self.spent += amount
        if self.spent > self.work:
            raise BudgetExceeded(f"macro expansion would produce more than {self.work:,} characters; "
                                 "simplify the config (parameters that reference each other repeatedly?)")
        if time.thread_time() > self.deadline:
            raise BudgetExceeded(f"checking the config takes more than {self.seconds:g} s of CPU time; simplify it "
                                 "(parameters that reference each other repeatedly, huge $eval, deep nesting?)")


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("frazil_macro_budget", default=None)


@contextlib.contextmanager
def budget(seconds: float = DEFAULT_SECONDS, work: int = DEFAULT_WORK, *, reuse: bool = True) -> Iterator[Budget]:
    """Run the block under a budget. ``reuse``: inside an open budget, keep
    charging that one (a submission check's task plans share its budget)."""
    current = _CURRENT.get()
    if reuse and current is not None:
        yield current
        return
    opened = Budget(seconds=seconds, work=work, deadline=time.thread_time() + seconds)
    token = _CURRENT.set(opened)
    try:
        yield opened
    finally:
        _CURRENT.reset(token)


def charge(amount: int = 0) -> None:
    """Charge the open budget, if any (BudgetExceeded when it runs out)."""
    current = _CURRENT.get()
    if current is not None:
        current.charge(amount)
