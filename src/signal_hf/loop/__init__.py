"""The active-learning round loop and the experiment runner (methods × seeds).

Round r of a trial (:mod:`.stages`, one function per stage, in this order):

1. *generate* (generative methods): the generator writes candidates that join S.
2. *score*: the current classifier's outputs over L and the candidates U \\ L.
3. *select*: the strategy picks b, split between real and synthetic per ``loop.budget_split``.
4. *annotate*: gold labels for real items, the configured oracle for synthetic ones.
5. *retrain* the classifier from the pretrained checkpoint on L and evaluate accuracy.
6. *self-inform* (``signal-gen`` with ``rl.enabled``): the retrained classifier's SIGnAL score is
   the reward of RL fine-tuning of the generator's LoRA adapter.
7. *probe* (generative methods): the fixed probe prompts sampled with the adapter on and off, both
   scored with that reward: did self-informing move the generator?
8. *save* the round (L, R, S, state, adapter) to the round store, then append the result row.

Round 0 is the same pipeline with only *retrain* (its L is the seeded random initial set).
:class:`Schedule` says how many rounds and how much each takes; :class:`Trial` runs one method and
seed; :class:`Experiment` runs them all in a locked run folder and writes the report.
"""

from .experiment import Experiment, run_experiment
from .methods import Method, method_name, parse_method
from .records import log_event, recipe_hash
from .schedule import Schedule
from .stages import annotate, generate, probe, retrain, save, score, select, self_inform
from .state import RoundContext, RoundState, derive_seed
from .training import Fitted, Retrainer, SharedCache
from .trial import Trial

__all__ = [
    "Experiment",
    "run_experiment",
    "Trial",
    "Schedule",
    "Method",
    "parse_method",
    "method_name",
    "RoundContext",
    "RoundState",
    "Fitted",
    "Retrainer",
    "SharedCache",
    "derive_seed",
    "recipe_hash",
    "log_event",
    "generate",
    "score",
    "select",
    "annotate",
    "retrain",
    "self_inform",
    "probe",
    "save",
]
