"""Figures of a search and of a workload: one module per plot, each with a ``*_figure``
(matplotlib, static PNG) and a ``*_html`` (plotly, interactive, hover details) writer.

* `pareto`: the Pareto front, pairwise objective panels, recommended point, SLO region,
  both fidelities when present (input: the ``pareto.json`` summary of a search);
* `hypervolume`: hypervolume (and Pareto size) over evaluations, by search phase;
* `cache`: prefix-cache hit ratio vs KV capacity of a trace, per sessions per cache;
* `trace`: one session's context per request over time, main vs sub-agents, compactions.

matplotlib runs on the Agg backend; plotly is imported only by the HTML writers.
"""
