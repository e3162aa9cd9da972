"""Benchmarks of Engine Room against bare Django + DRF + Celery, run by `make bench` (bench/run.py)."""
