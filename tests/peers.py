"""Whether tests may skip when a peer or tool is missing.

On a laptop a missing peer (node, libcoap, aiocoap...) skips the test; in CI
(CI=true) it fails, so a broken CI image cannot silently pass.
"""
import os

import pytest

REQUIRE_PEERS = os.environ.get("CI") == "true"


def need(tool_available, reason):
    """Skip (laptop) or fail (CI) the current test unless tool_available."""
    if not tool_available:
        if REQUIRE_PEERS:
            pytest.fail(reason + " (required because CI=true)", pytrace=False)
        pytest.skip(reason)
