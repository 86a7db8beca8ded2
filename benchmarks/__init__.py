"""Speed benchmarks of signal_hf (``make bench`` = ``python -m benchmarks.run``).

Sections (each a module with a ``run_*`` function returning plain-dict rows and a ``*_table``
function rendering them with rich):

* :mod:`benchmarks.acquisition` — SIGnAL, CAL and BADGE selection on synthetic 768-d pools, ours
  against small-text 1.4.1's ``ContrastiveActiveLearning`` and ``BADGE`` fed the same embeddings and
  probabilities (bench extra: ``pip install 'signal_hf[bench]'``).
* :mod:`benchmarks.rounds` — the cost of one active-learning round of the demo recipes (generation,
  dedup/filtering, inference, acquisition, training, evaluation, RL, store write) at two pool sizes.
* :mod:`benchmarks.generation` — generator throughput (tokens/s), batched vs one prompt at a time.

:mod:`benchmarks.common` holds the shared measuring tools (wall time, peak RSS, thread caps, machine
and version info).
"""
