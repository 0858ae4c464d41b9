"""The stack's API served on this machine as API Gateway would serve its stage (``make local``).

The function runs in real Lambda runtime processes (:mod:`local_api.environment`, one per alias
and version, each with its own Runtime API, :mod:`local_api.runtime_api`) against moto's
DynamoDB (:mod:`local_api.moto_server`); API Gateway's side is the component's own templates and
responses (:mod:`local_api.integration`) behind its routing decisions (:mod:`local_api.routing`),
for what the stack's program run declares (:mod:`local_api.stack`). The function's runtime tests
use the same runtime pieces.
"""
