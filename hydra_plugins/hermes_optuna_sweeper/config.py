"""Config schema of the sweeper, registered as ``hydra/sweeper=hermes_optuna``."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class BudgetConf:
    """Typed (not ``Optional[Dict]``), so ``hydra.sweeper.budget={max_devices: 16}`` and
    ``hydra.sweeper.budget.max_devices=16`` merge and a wrong key or type is named."""

    max_usd_per_hour: float | None = None
    max_devices: int | None = None


@dataclass
class HermesOptunaSweeperConf:
    _target_: str = "hydra_plugins.hermes_optuna_sweeper.sweeper.HermesOptunaSweeper"
    n_trials: int = 20
    # Jobs handed to the launcher at once (hydra/launcher=joblib runs them in parallel). Fixed,
    # not tied to the launcher's n_jobs, so results do not depend on the number of workers.
    batch_size: int = 4
    seed: int = 0
    sampler: str = "auto"  # auto | tpe | nsga2 | random
    # metric names of the hermes-sim summary (slo_tokens_per_usd, ttft_ms.p99, cost_usd_per_hour, ...)
    objectives: list[Any] = field(default_factory=lambda: [
        {"metric": "slo_tokens_per_usd", "direction": "maximize"}])
    constraints: list[str] = field(default_factory=list)  # e.g. ["ttft_ms.p99 <= 1000"]
    budget: BudgetConf | None = field(default_factory=BudgetConf)  # {max_usd_per_hour: 100, ...}
    study_name: str = "hermes_sweep"
    storage: str | None = None  # None: in memory; e.g. sqlite:///sweep.db to keep/resume
    # search space in Hydra's override grammar, e.g. {cluster.tp: "choice(1,2,4)",
    # scheduler.max_num_seqs: "tag(log, int, interval(16, 256))"}
    params: dict[str, str] | None = None

ConfigStore.instance().store(group="hydra/sweeper", name="hermes_optuna",
                             node=HermesOptunaSweeperConf, provider="hermes_optuna_sweeper")
