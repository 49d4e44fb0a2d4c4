"""Benchmark harness: data, models, training, evaluation and tables for the Fourier-PEFT reproductions."""
