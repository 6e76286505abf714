"""Helpers shared by the test suites and the benchmarks (fake backend, tiny models, servers, browser)."""
