"""The component plugin's entry point: Pulumi runs this folder with Python to serve
``VersionedLambdaApi`` to programs in any language.

``component_provider_host`` infers the package's schema from the annotations of the component
and its args (see ``schema.json``, the committed snapshot) and answers the engine's requests.
Run by Pulumi only (``pulumi package add``, ``pulumi up`` of a program that uses the package):
the engine passes its address as an argument.
"""

from pulumi.provider.experimental import component_provider_host

from versioned_lambda_api import __version__
from versioned_lambda_api.component import PACKAGE, VersionedLambdaApi

if __name__ == "__main__":
    # The name must be the package part of the component's type token.
    component_provider_host([VersionedLambdaApi], PACKAGE, version=__version__)
