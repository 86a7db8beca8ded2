"""signal_hf: self-informed generative active learning (SIGnAL) of text classifiers, Hugging Face-native."""

__version__ = "0.1.0"

from .config import ExperimentConfig, load_recipe  # noqa: E402
from .errors import ConfigError, DataError, EmptyPoolError, SignalHFError, StrategyError  # noqa: E402

__all__ = ["ExperimentConfig", "load_recipe", "ConfigError", "DataError", "EmptyPoolError", "SignalHFError", "StrategyError", "__version__"]
