"""The release tool: watch a canary, judge it, promote or roll back."""

__version__ = "1.0.0"
