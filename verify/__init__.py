"""``make verify STACK=dev``: deploy a throwaway copy of a stack to a real AWS account and check
there what no offline test can (README, "What `make verify` checks on real AWS")."""
