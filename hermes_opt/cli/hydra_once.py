"""A plain ``hermes-sim`` run (overrides only) as ``@hydra.main`` runs it, composed once.

For one run ``@hydra.main`` composes the whole config twice (``Hydra.get_mode`` composes to read
``hydra.mode``, then ``Hydra.run`` composes again), and the one-line error check composed it a
third time before them: ~0.2 s each on the benchmark machine, most of the time from process start
to the first simulated event. Here the one composition does all three jobs: a failure is the
caller's one-line error, the composed ``hydra.mode`` is what ``get_mode`` would return, and
``Hydra.run`` is handed that same config instead of composing again (``_ComposedOnce``).
Everything else is Hydra's own code, called as ``hydra.main`` -> ``_run_hydra`` -> ``_run_app``
call it: the same search path, task name, ``Hydra.run``, ``run_job``, callbacks and logging.

Flags (``--multirun``, ``--cfg``, ``--help``, ``-cn`` ...) and ``hydra.mode`` overrides are not a
plain run: ``plain_run`` says so and the caller runs ``@hydra.main``. This uses Hydra 1.3's
internal API (``hydra-core<1.4`` in pyproject.toml); tests/cli/test_hydra_once.py checks that the
config a job gets, Hydra's part included, is the one ``@hydra.main`` gives it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

_MODE_RUN = "hydra.mode=RUN"  # what _run_app adds when the config leaves hydra.mode unset


def plain_run(argv: list[str]) -> bool:
    """Overrides only: no flag for Hydra's own CLI and no ``hydra.mode`` of the user's."""
    return not any(a.startswith("-") or a.lstrip("+~").split("=", 1)[0] == "hydra.mode"
                   for a in argv)


def run_once(task_function: Callable[[DictConfig], Any], config_path: str, config_name: str,
             argv: list[str], on_error: Callable[[Exception], None],
             check: Callable[[DictConfig], None]) -> bool:
    """Compose ``config_name`` with ``argv`` once; ``on_error(err)`` if that fails (it must not
    return), ``check(cfg)``, then run the job as ``@hydra.main`` would. False (nothing run): the
    config asks for a multirun, which is ``@hydra.main``'s to run."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import (
        _run_app,
        create_automatic_config_search_path,
        detect_calling_file_or_module_from_task_function,
        detect_task_name,
        run_and_report,
        validate_config_path,
    )
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    calling_file, calling_module = detect_calling_file_or_module_from_task_function(task_function)
    task_name = detect_task_name(calling_file, calling_module)
    validate_config_path(config_path)
    search_path = create_automatic_config_search_path(calling_file, calling_module, config_path)
    hydra = run_and_report(lambda: Hydra.create_main_hydra2(task_name=task_name,
                                                             config_search_path=search_path))
    try:
        cfg = hydra.compose_config(config_name=config_name, overrides=list(argv),
                                   run_mode=RunMode.RUN)
    except Exception as err:  # Hydra and OmegaConf raise several types: all are bad input
        GlobalHydra.instance().clear()  # on_error may compose again to name what is allowed
        on_error(err)
        raise  # on_error exits; not reached
    try:
        mode = cfg.hydra.mode  # Hydra.get_mode's answer
        if mode not in (None, RunMode.RUN):
            return False
        check(cfg)
        hydra.config_loader = _ComposedOnce(hydra.config_loader, cfg, config_name, argv)
        _run_app(run=True, multirun=False, mode=mode, hydra=hydra, config_name=config_name,
                 task_function=task_function, overrides=list(argv))
    finally:
        GlobalHydra.instance().clear()
    return True


class _ComposedOnce:
    """Hydra's config loader, except that the run's own composition (``Hydra.run`` ->
    ``load_configuration`` with the run's overrides) returns the config composed already.
    ``_run_app`` adds ``hydra.mode=RUN`` to those overrides when the config leaves the mode
    unset; that override is applied to the composed config as Hydra applies it (after the
    defaults list, a ``hydra.*`` value, recorded last in ``hydra.overrides.hydra``). Any other
    call (``hydra.verbose`` debug output composes again) goes to the real loader."""

    def __init__(self, loader: Any, cfg: DictConfig, config_name: str, argv: list[str]) -> None:
        self._loader = loader
        self._cfg: DictConfig | None = cfg
        self._config_name = config_name
        self._argv = list(argv)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_configuration(self, config_name: str | None, overrides: list[str], run_mode: Any,
                           from_shell: bool = True, validate_sweep_overrides: bool = True) -> Any:
        from hydra.types import RunMode
        cfg, extra = self._cfg, overrides[len(self._argv):]
        if (cfg is None or run_mode != RunMode.RUN or config_name != self._config_name
                or overrides[:len(self._argv)] != self._argv or extra not in ([], [_MODE_RUN])
                or not from_shell or not validate_sweep_overrides):
            return self._loader.load_configuration(
                config_name=config_name, overrides=overrides, run_mode=run_mode,
                from_shell=from_shell, validate_sweep_overrides=validate_sweep_overrides)
        self._cfg = None  # one run, one config
        if extra:
            from hydra._internal.config_loader_impl import ConfigLoaderImpl
            from hydra.core.override_parser.overrides_parser import OverridesParser
            parsed = OverridesParser.create().parse_overrides(overrides=extra)
            ConfigLoaderImpl._apply_overrides_to_config(parsed, cfg)
            cfg.hydra.overrides.hydra.append(_MODE_RUN)
        return cfg
