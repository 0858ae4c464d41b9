"""The preflight rules as a CrossGuard policy pack: ``pulumi preview --policy-pack policy``.

Pulumi runs this folder (``python -m pulumi.policy <engine> policy``, which runs this file with
the folder first on sys.path) in the venv PulumiPolicy.yaml names.
"""

# A sibling on sys.path when Pulumi runs the folder; mypy and the tests know it as
# policy.preflight_policies.
from preflight_policies import PACK_NAME, POLICIES  # type: ignore[import-not-found]
from pulumi_policy import PolicyPack

PolicyPack(name=PACK_NAME, policies=list(POLICIES))
