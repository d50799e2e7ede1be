"""Benchmarks: code here, suites and committed reports under ``eval/``."""
