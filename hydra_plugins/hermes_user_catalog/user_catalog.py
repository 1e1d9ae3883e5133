"""Puts the user catalog root on Hydra's config search path, ahead of the package's conf.

A plugin rather than an argument to each compose call because Hydra composes in several places
(``hermes-sim``'s ``@hydra.main`` and its one-composition path, a study's workers through the
Compose API, the sweeper's jobs, the one-line error helpers): Hydra consults every discovered
``SearchPathPlugin`` whenever it builds a search path, so all of them see the same root, and
worker processes find it from the inherited environment. Ahead of ``main`` (not appended, as
``--config-dir`` is) so that a user's entry may shadow a shipped one of the same name, as
``hermes_opt.compose.catalog`` reads it.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin

from hermes_opt.compose import catalog


class UserCatalogSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        root = catalog.user_root()
        if not root.is_dir():  # nothing to add; Hydra would only probe a missing folder
            return
        main = SearchPathQuery(provider="main")
        anchored = any(e.provider == "main" for e in search_path.get_path())
        search_path.prepend(provider="hermes-opt user catalog",
                            path=f"file://{root.resolve()}", anchor=main if anchored else None)
