"""Kernel measurements on a lent device: time GEMM, attention and memory bandwidth
(``bench``), keep them with their provenance (``report``), and read them against the
performance model (``compare``)."""
