"""Integrations with other frameworks; each module imports its framework only when it is imported."""
