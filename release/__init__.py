"""The release tool: watch a canary, judge it, promote or roll back."""
