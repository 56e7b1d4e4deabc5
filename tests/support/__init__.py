"""Helpers shared by slob's tests."""
