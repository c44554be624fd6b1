"""GoChat benchmarks: `make bench` (python -m bench) measures the real-time path (S1
one-to-one throughput and latency, S2 group delivery, S3 memory per idle socket) in
production mode and in the embedded default. docs/benchmarks.md has the method and the
numbers."""
