"""Lexer and parser: a macro string becomes a tuple of template nodes, once.

IceProd rescans the whole string on every pass with a generator-based
tokenizer; here a string is parsed a single time (and cached), and each pass
only walks the resulting nodes.

Grammar (IceProd's, with fixes F3, F5 and F8 of DESIGN.md §3.3)::

    phrase   := "$" [keyword] "(" sentence ")" { "[" sentence "]" }
    brace    := "${" name "}"                     (F8; a shell variable if unknown)
    sentence := { text | "\\" char | phrase | brace }

* ``keyword`` is an identifier written right before ``(``; a ``$`` that starts
  neither a phrase nor a brace is plain text (F3: ``$HOME`` is left for the
  shell and never disturbs the rest of the string).
* Parentheses inside a phrase nest as text (``$eval((1+2)*3)``); a stray
  ``)`` or ``]`` outside any phrase is text (F5).
* ``[key]`` is a lookup only right after a phrase (``$steering(list)[1]``);
  elsewhere brackets are text (``x[1]``).
* An unclosed phrase stays literal and its inner phrases still expand; the
  template records the problem so that every pass reports it (F5).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from .context import MAX_MACROS, BoundExceeded

# Characters with a meaning; everything between them is copied as one run.
_SPECIAL = re.compile(r"[$()\[\]\\]")
_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(")
_BAD_BRACE_NAME = re.compile(r"[$(){}\[\]\\]")
_EXCERPT = 200  # longest source text quoted in a diagnostic
_MAX_BRACE = 258  # "${" names are looked for this far, to keep parsing linear

# Templates larger than this are parsed every time rather than cached, so
# that a pathological value cannot pin megabytes in the cache.
_CACHE_MAX_LEN = 4096


UNBUILT: Any = object()


class Text:
    """Literal text. ``plain`` is its value; ``internal`` re-escapes the
    characters that were escaped, so that a later pass keeps them literal (F2)."""

    __slots__ = ("plain", "internal")

    def __init__(self, plain: str, internal: str) -> None:
        self.plain = plain
        self.internal = internal


class Brace:
    """``${name}``: a macro name when it resolves, else a shell variable."""

    __slots__ = ("name", "raw")

    def __init__(self, name: str, raw: str) -> None:
        self.name = name
        self.raw = raw


class Phrase:
    """``$keyword(args)[key]...``; ``keyword`` is None for ``$(name)``."""

    __slots__ = ("keyword", "args", "lookups", "source", "start", "end", "skeleton", "static")

    def __init__(self, keyword: str | None, args: tuple["Node", ...], source: str, start: int, end: int) -> None:
        self.keyword = keyword
        self.args = args
        self.lookups: list[tuple[Node, ...]] = []  # filled while parsing only
        # Where the phrase is in its source; the text itself is only needed
        # for diagnostics, so it is not copied out while parsing.
        self.source = source
        self.start = start
        self.end = end
        # For $eval: the compiled argument (skeleton.Skeleton), built on first
        # use; None when the argument has no macros or cannot be compiled.
        self.skeleton: Any = UNBUILT
        # (plain, internal) of an argument without macros, e.g. "job" in $(job).
        self.static: tuple[str, str] | None = None
        if not args:
            self.static = ("", "")
        elif len(args) == 1 and type(args[0]) is Text:
            self.static = (args[0].plain, args[0].internal)

    @property
    def raw(self) -> str:
        """The phrase as written, lookups included."""
        return self.source[self.start : self.end]


Node = Text | Brace | Phrase


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed string: its nodes, and syntax problems to report on each use."""

    nodes: tuple[Node, ...]
    problems: tuple[tuple[str, str], ...] = ()  # (phrase text, message)


@dataclass(slots=True)
class _Frame:
    kind: str  # "root" | "phrase" | "lookup"
    start: int  # index of the opener in the source
    opener: str  # source text of the opener, restored if never closed
    keyword: str | None = None
    target: Phrase | None = None  # for a lookup: the phrase it indexes
    target_start: int = 0  # for a lookup: where that phrase starts
    depth: int = 0  # open text parentheses inside a phrase
    nodes: list[Node] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)  # pending text run
    internal: list[str] = field(default_factory=list)

    def add_text(self, plain: str, internal: str) -> None:
        self.plain.append(plain)
        self.internal.append(internal)

    def flush(self) -> None:
        if self.plain:
            self.nodes.append(Text("".join(self.plain), "".join(self.internal)))
            self.plain.clear()
            self.internal.clear()

    def add_node(self, node: Node) -> None:
        self.flush()
        self.nodes.append(node)

    def finish(self) -> tuple[Node, ...]:
        self.flush()
        return tuple(self.nodes)


def parse(text: str) -> Template:
    """Parse ``text`` into a :class:`Template` (cached for short strings)."""
    if len(text) <= _CACHE_MAX_LEN:
        return _parse_cached(text)
    return _parse(text)


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str) -> Template:
    return _parse(text)


def _parse(text: str) -> Template:  # noqa: C901 - one state machine, kept in one place
    stack = [_Frame("root", 0, "")]
    top = stack[0]
    # The phrase whose ``)`` or ``]`` was the character just before (and
    # where it starts): only there may ``[`` open a lookup.
    just_closed: Phrase | None = None
    closed_start = 0
    macros = 0
    i = 0
    n = len(text)
    while i < n:
        if macros > MAX_MACROS:
            raise BoundExceeded(f"more than {MAX_MACROS} macros in one value")
        m = _SPECIAL.search(text, i)
        if m is None:
            top.add_text(text[i:], text[i:])
            break
        j = m.start()
        if j > i:
            run = text[i:j]
            top.add_text(run, run)
            just_closed = None
        ch = text[j]
        i = j + 1
        closed: Phrase | None = None
        closed_at = 0
        if ch == "\\":
            if i < n:
                top.add_text(text[i], "\\" + text[i])
                i += 1
        elif ch == "$":
            nxt = text[i] if i < n else ""
            if nxt == "(":
                top = _push(stack, _Frame("phrase", j, "$("))
                macros += 1
                i += 1
            elif nxt == "{" and (end := text.find("}", i + 1, i + _MAX_BRACE)) > i + 1 and not _BAD_BRACE_NAME.search(
                text, i + 1, end
            ):
                top.add_node(Brace(text[i + 1 : end], text[j : end + 1]))
                macros += 1
                i = end + 1
            elif (km := _KEYWORD.match(text, i)) is not None:
                top = _push(stack, _Frame("phrase", j, text[j : km.end()], keyword=km.group(1)))
                macros += 1
                i = km.end()
            else:
                top.add_text("$", "$")  # a shell variable or a lone dollar (F3)
        elif ch == "(":
            top.add_text("(", "(")
            if top.kind == "phrase":
                top.depth += 1
        elif ch == ")":
            if top.kind == "phrase" and top.depth == 0:
                frame_start = top.start
                stack.pop()
                phrase = Phrase(top.keyword, top.finish(), text, top.start, i)
                top = stack[-1]
                top.add_node(phrase)
                closed, closed_at = phrase, frame_start
            else:
                top.add_text(")", ")")
                if top.kind == "phrase":
                    top.depth -= 1
        elif ch == "[":
            if just_closed is not None:
                top = _push(stack, _Frame("lookup", j, "[", target=just_closed, target_start=closed_start))
                macros += 1
            else:
                top.add_text("[", "[")
        else:  # "]"
            if top.kind == "lookup":
                stack.pop()
                target = top.target
                assert target is not None
                target.lookups.append(top.finish())
                target.end = i
                closed, closed_at = target, top.target_start
                top = stack[-1]
            else:
                top.add_text("]", "]")
        just_closed, closed_start = closed, closed_at
    # Frames still open were never closed: each becomes its opener as text
    # followed by its content. A frame was pushed after everything its parent
    # holds, so appending them in order to the root keeps the text in order
    # (and stays linear for "$($($(...").
    problems: list[tuple[str, str]] = []
    root = stack[0]
    for frame in stack[1:]:
        what = "'['" if frame.kind == "lookup" else f"phrase '{frame.opener}'"
        excerpt = text[frame.start : frame.start + _EXCERPT]
        problems.append((excerpt, f"unclosed {what}: missing closing bracket"))
        root.add_text(frame.opener, frame.opener)
        for node in frame.finish():
            if type(node) is Text:
                root.add_text(node.plain, node.internal)
            else:
                root.add_node(node)
    return Template(root.finish(), tuple(problems))


def _push(stack: list[_Frame], frame: _Frame) -> _Frame:
    stack[-1].flush()
    stack.append(frame)
    return frame
