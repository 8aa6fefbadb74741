"""Mage's get_secret_value, answered by kiln from the project's encrypted secrets."""

from kiln_runner.channel import call


def get_secret_value(name, repo_name=None, suppress_warning=False, **kwargs):
    """The decrypted value of the project's secret `name` (an error if there is none)."""
    return call("get_secret_value", {"name": str(name)})
