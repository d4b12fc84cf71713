"""The shared lifecycle rules: one file, every CRM."""

from connector.lifecycle.rules import Rules, decide, load_rules

__all__ = ["Rules", "decide", "load_rules"]
