"""Spellings of hardware and models in measurement tables -> catalog names.

Patterns match the whole normalized spelling; among the entries that match, a user table's win,
then the most specific (the longest part of the spelling an entry names before its open tail
``(-.*)?``), then the first listed: a longer product name is never captured by a shorter one.

The table is ``conf/tables/aliases.yaml`` (format and normalization documented there and in
docs/validation.md), optionally extended by user tables (``hermes-sim validate --aliases FILE``)
whose entries are tried first. A malformed table is one ``ConfigError`` naming the file and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import yaml

from hermes_opt.compose import catalog
from sim.errors import ConfigError

SHIPPED = catalog.CONF_DIR / "tables" / "aliases.yaml"
KINDS = ("hardware", "model")
TOP_KEYS = ("drop_words", *KINDS)
ENTRY_KEYS = ("pattern", "name", "note")

SEVERAL = re.compile(r"\s/\s|;")  # a cell naming several products

_user_tables: tuple[str, ...] = ()  # set by use_tables(); tried before the shipped table


# An entry's pattern may end in this open tail ("and any further words"); what it names before
# the tail is how specific it is (``specificity``).
OPEN_TAIL = "(-.*)?"


@dataclass(frozen=True, slots=True)
class Entry:
    pattern: re.Pattern
    name: str
    where: str  # file and key, for messages
    head: re.Pattern | None = None  # the pattern without its open tail (None: it has none)
    tier: int = 0  # 0 for user tables, 1 for the shipped table: a user entry always wins

    def specificity(self, text: str) -> int:
        """Characters of ``text`` the entry names itself: the longest prefix ending at a word
        boundary that the pattern without its open tail matches whole (all of ``text`` for a
        pattern without one). "h200-nvl" is 4 for ``h200(-sxm5?)?(-141gb)?(-.*)?`` and 8 for
        ``h200-nvl(-.*)?``, so the H200 NVL entry wins wherever it is listed."""
        if self.head is None:
            return len(text)
        cuts = [i for i, c in enumerate(text) if c == "-"] + [len(text)]
        return max((k for k in cuts if self.head.fullmatch(text[:k])), default=0)


@dataclass(frozen=True, slots=True)
class Table:
    drop_words: dict[str, frozenset[str]]
    entries: dict[str, tuple[Entry, ...]]
    files: tuple[str, ...]


def use_tables(paths: list[str] | tuple[str, ...] = ()) -> Table:
    """Extend the shipped table with user tables (first match wins, user tables first); returns
    the merged table, so a malformed file fails here, once, before any row is read."""
    global _user_tables
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"--aliases={p}: no such file")
    wanted = tuple(str(Path(p).resolve()) for p in paths)
    merged = _merged(wanted)  # raises on a malformed table, leaving the previous tables in use
    _user_tables = wanted
    return merged


def table() -> Table:
    return _merged(_user_tables)


@cache
def _merged(user: tuple[str, ...]) -> Table:
    parts = [_read(Path(p)) for p in user] + [_read(SHIPPED)]
    drop = {k: frozenset().union(*(t.drop_words[k] for t in parts)) for k in KINDS}
    tiers = [0] * len(user) + [1]
    entries = {k: tuple(replace(e, tier=tier) for t, tier in zip(parts, tiers) for e in t.entries[k])
               for k in KINDS}
    return Table(drop_words=drop, entries=entries, files=(*user, str(SHIPPED)))


@cache
def _read(path: Path) -> Table:
    where = str(path)
    try:
        node = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"aliases={where}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "syntax error")
        raise ConfigError(f"aliases={where}: not a readable YAML file ({first})") from None
    node = {} if node is None else node
    if not isinstance(node, dict):
        raise ConfigError(f"aliases={where}: must be a mapping with keys {', '.join(TOP_KEYS)}")
    for key in node:
        if key not in TOP_KEYS:
            raise ConfigError(f"aliases={where}: {key}: unknown key; allowed: {', '.join(TOP_KEYS)}")
    drop_node = node.get("drop_words") or {}
    if not isinstance(drop_node, dict) or any(k not in KINDS for k in drop_node):
        raise ConfigError(f"aliases={where}: drop_words={drop_node!r}: must map hardware/model to "
                          "lists of words")
    drop = {}
    for kind in KINDS:
        words = drop_node.get(kind) or []
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise ConfigError(f"aliases={where}: drop_words.{kind}={words!r}: must be a list of words")
        drop[kind] = frozenset(w.lower() for w in words)
    entries: dict[str, tuple[Entry, ...]] = {}
    for kind in KINDS:
        raw = node.get(kind) or []
        if not isinstance(raw, list):
            raise ConfigError(f"aliases={where}: {kind}: must be a list of {{pattern, name}} entries")
        out = []
        for i, item in enumerate(raw):
            key = f"{kind}[{i}]"
            if not isinstance(item, dict):
                raise ConfigError(f"aliases={where}: {key}={item!r}: must be a mapping "
                                  "{pattern: <regex>, name: <catalog name>}")
            for k in item:
                if k not in ENTRY_KEYS:
                    raise ConfigError(f"aliases={where}: {key}.{k}: unknown key; allowed: "
                                      f"{', '.join(ENTRY_KEYS)}")
            pattern, name = item.get("pattern"), item.get("name")
            if not isinstance(pattern, str) or not pattern:
                raise ConfigError(f"aliases={where}: {key}.pattern={pattern!r}: must be a regular "
                                  "expression (text)")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
                raise ConfigError(f"aliases={where}: {key}.name={name!r}: must be a catalog name "
                                  "(lowercase letters, digits, _)")
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as err:
                raise ConfigError(f"aliases={where}: {key}.pattern={pattern!r}: not a valid regular "
                                  f"expression ({err})") from None
            head = (re.compile(pattern[:-len(OPEN_TAIL)], re.IGNORECASE)
                    if pattern.endswith(OPEN_TAIL) else None)
            out.append(Entry(compiled, name, f"{where}: {key}", head))
        entries[kind] = tuple(out)
    return Table(drop_words=drop, entries=entries, files=(where,))


def normalize(kind: str, raw: object, drop_words: frozenset[str] | None = None) -> str:
    """The spelling patterns are matched against (see conf/tables/aliases.yaml)."""
    text = str(raw).strip().lower()
    if kind == "model" and "/" in text:
        text = text.rsplit("/", 1)[1]
    words = drop_words if drop_words is not None else table().drop_words.get(kind, frozenset())
    tokens = [t for t in re.split(r"[^a-z0-9]+", text) if t and t not in words]
    return "-".join(tokens)


def alias(kind: str, raw: object) -> str:
    """The name the table gives ``raw`` ('' for an unknown spelling); not checked against the
    catalog (``resolve`` does that)."""
    if kind not in KINDS:
        raise ValueError(kind)
    if SEVERAL.search(str(raw)):  # "B300 / B200 / H200": a list of products, not one
        return ""
    t = table()
    text = normalize(kind, raw, t.drop_words[kind])
    if not text:
        return ""
    found = [e for e in t.entries[kind] if e.pattern.fullmatch(text)]
    if not found:
        return ""
    # user tables first; then the most specific entry ("H200 NVL" is not an H200 SXM whatever
    # the order); equal ones: the first listed
    return min(found, key=lambda e: (e.tier, -e.specificity(text))).name


def resolve(kind: str, raw: object) -> tuple[str, str]:
    """(catalog name, '') or ('', reason): unknown spelling, or a name the catalog lacks."""
    text = str(raw).strip()
    options = catalog.options(kind)
    if text in options:
        return text, ""
    if not text or text.lower() == "nan":
        return "", f"{kind} not given"
    name = alias(kind, text)
    if not name and SEVERAL.search(text):
        return "", f"{kind} {text[:48]!r} names several products (one per row, please)"
    if not name:
        return "", (f"unknown {kind} spelling {text[:48]!r} (normalized "
                    f"{normalize(kind, text)[:48]!r}; add it to conf/tables/aliases.yaml or --aliases)")
    if name not in options:
        return "", f"{kind} {name} (from {text[:40]!r}) not in the catalog"
    return name, ""


def catalog_name(kind: str, raw: object) -> str:
    return resolve(kind, raw)[0]
