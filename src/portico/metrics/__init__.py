"""Prometheus metrics: plain counters in each serving process, summed in the main one."""
