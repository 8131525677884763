"""Runnable examples: `python -m examples.make_demo_data` builds the offline demo data and config."""
