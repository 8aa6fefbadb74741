"""Mage's get_variable: another block's output, read from kiln's output store."""

from kiln_runner import codec
from kiln_runner.channel import call


def get_variable(pipeline_uuid, block_uuid, variable_name="output_0", partition=None, **kwargs):
    """The stored output of `block_uuid` in `pipeline_uuid`, in `partition` (default: this run's
    execution partition). kiln stores one output per block run, so variable_name must be output_0."""
    if variable_name not in ("output_0", None):
        raise ValueError(f"get_variable: kiln stores one output per block (output_0), not {variable_name!r}")
    value = call(
        "get_variable",
        {"pipeline_uuid": str(pipeline_uuid), "block_uuid": str(block_uuid), "partition": partition},
    )
    return codec.decode(value)
