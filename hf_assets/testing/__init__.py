"""Test and demo helpers shipped with the package: tiny random-weight model folders. Never used to encode real data."""
