"""Mage's trigger_pipeline: kiln creates the run through an api trigger of the pipeline (the named
one, or `trigger_pipeline` made on first use) and, with check_status, waits for it to end."""

import datetime

from kiln_runner.channel import call


class PipelineRun:
    """The run trigger_pipeline made, with the fields of Mage's PipelineRun a caller reads."""

    def __init__(self, data):
        self.id = data.get("id")
        self.pipeline_uuid = data.get("pipeline_uuid")
        self.pipeline_schedule_id = data.get("pipeline_schedule_id")
        self.status = data.get("status")
        self.variables = data.get("variables") or {}
        self.execution_partition = data.get("execution_partition")
        date = data.get("execution_date")
        self.execution_date = datetime.datetime.fromisoformat(date.replace("Z", "+00:00")) if date else None

    def __repr__(self):
        return f"PipelineRun(id={self.id}, pipeline_uuid={self.pipeline_uuid!r}, status={self.status!r})"


def trigger_pipeline(
    pipeline_uuid,
    repo_path=None,
    variables=None,
    check_status=False,
    error_on_failure=False,
    poll_interval=60,
    poll_timeout=None,
    schedule_name=None,
    verbose=True,
    **kwargs,
):
    """Runs another pipeline of the project; returns its PipelineRun (ended, with check_status)."""
    from kiln_runner import codec

    result = call(
        "trigger_pipeline",
        {
            "pipeline_uuid": str(pipeline_uuid),
            "variables": codec.encode(variables or {}, "variables"),
            "check_status": bool(check_status),
            "error_on_failure": bool(error_on_failure),
            "poll_interval": poll_interval,
            "poll_timeout": poll_timeout,
            "schedule_name": schedule_name,
            "verbose": bool(verbose),
        },
    )
    return PipelineRun(result)
