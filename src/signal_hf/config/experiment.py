"""The whole recipe: one dataclass per section, and the checks that span sections."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..acquisition.config import AcquisitionConfig, split_method_name
from ..errors import ConfigError
from ..generation.config import GeneratorConfig, OracleConfig
from ..rl.config import RLConfig
from ..store.config import StoreConfig
from .sections import ClassifierConfig, DataConfig, LoopConfig, OutputConfig

__all__ = ["ExperimentConfig", "SECTIONS"]

#: recipe section name -> its dataclass, in recipe (and reference) order.
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "classifier": ClassifierConfig,
    "acquisition": AcquisitionConfig,
    "loop": LoopConfig,
    "output": OutputConfig,
    "generator": GeneratorConfig,
    "oracle": OracleConfig,
    "rl": RLConfig,
    "store": StoreConfig,
}


@dataclass
class ExperimentConfig:
    """A whole recipe: a name and one dataclass per section (each checks its own fields)."""

    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    acquisition: AcquisitionConfig = field(default_factory=AcquisitionConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", f"expected a non-empty string, got {self.name!r}", "e.g. name: sst2-demo")
        if self.rl.enabled and not self.generator.enabled:
            raise ConfigError("rl.enabled", "RL needs the generator", "set generator.enabled: true")
        for i, entry in enumerate(self.acquisition.strategies):
            if any(split_method_name(entry)[1:]) and not self.generator.enabled:
                raise ConfigError(f"acquisition.strategies[{i}]", f"{entry!r} needs the generator", "set generator.enabled: true (or drop the -gen or budget-split suffix)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
