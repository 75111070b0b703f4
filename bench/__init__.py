"""Benchmark harness comparing hubstash with aws s3 sync and s5cmd on a local S3."""
