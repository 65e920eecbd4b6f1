"""Multi-objective co-design search (Optuna samplers, Ray executor, Pareto, hypervolume).

Depends on ``codesign`` and ``hwmodels``; never imports FastAPI.
"""
