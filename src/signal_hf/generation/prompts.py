"""Few-shot prompts for the generator: a task instruction I plus p real examples, no labels.

Two renderings:

* **chat** — the tokenizer has a chat template (SmolLM2-Instruct): one user turn holding the
  instruction, the numbered examples and a request for the next one; the assistant turn is
  pre-filled with ``Example p+1:``.
* **completion** — base models without a template (Gemma 3 270M base): the instruction, then
  ``Example 1: …`` … ``Example p:`` one per line and a final ``Example p+1:`` the model continues;
  the output is kept up to the first newline (see :mod:`.postprocess`).

In both styles generation stops at the first newline (newline tokens count as EOS and are
suppressed as the first token).

The instruction names the label *set* where that helps the model write on-task text (AG News
topics), but never the label of an example: the generator writes unlabeled text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, EmptyPoolError
from ..types import TaskSpec

__all__ = [
    "default_instruction",
    "pair_field_names",
    "render_example",
    "render_prompt",
    "sample_example_indices",
    "uses_chat_template",
]

_TEMPLATES = {
    "sentiment": (
        "Write one new short text that expresses an opinion, like the examples below. "
        "Its sentiment may be {labels}. Match the style and length of the examples."
    ),
    "topic": (
        "Write one new short news text about one of these topics: {labels}. "
        "Match the style and length of the examples below."
    ),
    "pair": (
        "Write one new {a} and {b} pair like the examples below. The {b} may or may not "
        "contain the answer to the {a}. Use the format \"{A}: ... {B}: ...\" on one line."
    ),
}


def pair_field_names(task: TaskSpec) -> tuple[str, str]:
    """The two field names of a pair task as shown in prompts (``("question", "sentence")``)."""
    names = tuple(n for n in task.text_field_names if n)
    return (names[0], names[1]) if len(names) >= 2 else ("question", "sentence")


def default_instruction(task: TaskSpec) -> str:
    """The instruction template for ``task.task_type`` (sentiment, topic or pair)."""
    if task.task_type not in _TEMPLATES:
        raise ConfigError("data.task_type", f"no generator instruction for task type {task.task_type!r}", "use sentiment, topic or pair, or set generator.instruction")
    labels = ", ".join(task.label_names[:-1]) + (" or " if len(task.label_names) > 1 else "") + task.label_names[-1]
    if task.task_type == "topic":
        labels = ", ".join(task.label_names)
    a, b = pair_field_names(task)
    return _TEMPLATES[task.task_type].format(labels=labels, a=a, b=b, A=a.capitalize(), B=b.capitalize())


def _one_line(text: str | None, max_words: int) -> str:
    words = str(text or "").split()  # one line: newlines would break the completion format
    if max_words and len(words) > max_words:
        return " ".join(words[:max_words]) + " …"
    return " ".join(words)


def render_example(text: str, text_pair: str | None, task: TaskSpec, *, max_words: int = 0) -> str:
    """One example on one line; pair tasks as ``Question: … Sentence: …``. ``max_words`` > 0 cuts
    each field to that many words (``generator.max_example_words``)."""
    text = _one_line(text, max_words)
    if not task.is_pair:
        return text
    a, b = pair_field_names(task)
    return f"{a.capitalize()}: {text} {b.capitalize()}: {_one_line(text_pair, max_words)}"


def sample_example_indices(pool_size: int, n: int, p: int, *, seed: int) -> np.ndarray:
    """``(n, min(p, pool_size))`` row indices: p distinct pool rows per prompt, seeded.

    Vectorised: the p smallest of one uniform key per (prompt, row) give a uniform p-subset.
    """
    if pool_size <= 0:
        raise EmptyPoolError("the real pool has no usable text to draw in-context examples from; give the generator a non-empty real pool")
    if n < 0 or p <= 0:
        raise ConfigError("generator.num_examples" if p <= 0 else "n", f"must be positive (n={n}, p={p})", "e.g. num_examples: 3")
    rng = np.random.default_rng(seed)
    p = min(p, pool_size)
    keys = rng.random((n, pool_size))
    idx = np.argpartition(keys, p - 1, axis=1)[:, :p] if p < pool_size else np.broadcast_to(np.arange(pool_size), (n, pool_size)).copy()
    # argpartition leaves the p picks unordered in an implementation-defined way; order them by key
    # so the example order is a seeded random permutation too.
    order = np.take_along_axis(keys, idx, axis=1).argsort(axis=1)
    return np.take_along_axis(idx, order, axis=1)


def uses_chat_template(tokenizer: Any, prompt_style: str = "auto") -> bool:
    """Whether prompts are rendered with the tokenizer's chat template."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if prompt_style == "chat":
        if not has:
            raise ConfigError("generator.prompt_style", "is chat but the tokenizer has no chat template", "use prompt_style: completion (or auto) for base models")
        return True
    if prompt_style == "completion":
        return False
    return has


def render_prompt(examples: Sequence[str], instruction: str, tokenizer: Any, *, chat: bool, task: TaskSpec) -> str:
    """The full prompt string for one set of rendered examples."""
    numbered = "\n".join(f"Example {i + 1}: {e}" for i, e in enumerate(examples))
    nxt = len(examples) + 1
    if not chat:
        return f"{instruction}\n\n{numbered}\nExample {nxt}:"
    if task.is_pair:
        a, b = pair_field_names(task)
        ask = f"Write example {nxt} in the same form (\"{a.capitalize()}: ... {b.capitalize()}: ...\") on one line. Give only the example."
    else:
        ask = f"Write example {nxt} in the same style and of similar length, on one line. Give only the text."
    messages = [{"role": "user", "content": f"{instruction}\n\n{numbered}\n\n{ask}"}]
    # Pre-filling the answer with "Example p+1:" makes small instruct models write the text itself
    # instead of a preamble ("Here is a new example: ...").
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + f"Example {nxt}:"
