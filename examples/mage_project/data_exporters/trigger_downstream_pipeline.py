from mage_ai.orchestration.triggers.api import trigger_pipeline

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def trigger_downstream_pipeline(*args, **kwargs):
    # Trigger another pipeline when this one completes
    pipeline_run = trigger_pipeline(
        'downstream_pipeline',
        variables={'upstream_date': kwargs['execution_date']},
    )
    return {'pipeline_run_id': pipeline_run.id}
