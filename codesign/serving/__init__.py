"""From engine steps to TTFT, TPOT and throughput: aggregated and disaggregated serving."""
