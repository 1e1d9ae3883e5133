"""Reading a study file: one line for a file that is not a study, and nothing a file can do to
the machine while it is read. A study file is small; a huge one, or one whose YAML aliases
expand exponentially when loaded (a "billion laughs" file: eight levels of nine aliases is
4e8 strings from 72 aliases), is refused before OmegaConf expands it. Loading code named by a study file
(``evaluator: module:function``) is a separate trust decision (docs/opt.md "Trust")."""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from sim.errors import ConfigError

MAX_STUDY_BYTES = 1 << 20  # 1 MiB: the largest shipped study is under 4 KiB
MAX_EXPANDED_NODES = 100_000  # YAML nodes once aliases are expanded; shipped studies: < 500


def read(path: Path) -> DictConfig:
    """The study file as an OmegaConf node (not yet checked as a study)."""
    where = f"study={str(path)!r}"
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ConfigError(f"{where}: cannot read ({err.strerror})") from None
    if size > MAX_STUDY_BYTES:
        raise ConfigError(f"{where}: {size:,} bytes; a study file is at most "
                          f"{MAX_STUDY_BYTES:,} bytes")
    try:
        text = path.read_text()
        nodes = expanded_nodes(yaml.compose(text))
        if nodes > MAX_EXPANDED_NODES:
            raise ConfigError(f"{where}: its YAML aliases expand to more than "
                              f"{MAX_EXPANDED_NODES:,} values; a study file is at most that")
        return OmegaConf.load(path)
    except ConfigError:
        raise
    except Exception as err:  # yaml, OmegaConf, OS and decoding errors: not a readable YAML file
        mark = getattr(err, "problem_mark", None)
        raise ConfigError(f"{where}: not a valid YAML file: {str(err).splitlines()[0]}"
                          + (f" (line {mark.line + 1})" if mark is not None else "")) from None


def expanded_nodes(root: yaml.Node | None) -> int:
    """How many YAML nodes the document becomes once every alias is expanded, counted on the
    composed graph (an alias is the same node object, so nothing is expanded to count it);
    more than MAX_EXPANDED_NODES + 1 for a recursive alias."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def count(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:  # an alias to an enclosing node: it never ends
            return MAX_EXPANDED_NODES + 1
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(count(k) + count(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(count(item) for item in node.value)
        else:
            total = 1
        active.discard(key)
        memo[key] = min(total, MAX_EXPANDED_NODES + 1)  # capped: no huge integers either
        return memo[key]
    return 0 if root is None else count(root)
