if 'callback' not in globals():
    from mage_ai.data_preparation.decorators import callback


@callback('success')
def summary_ready(summary, **kwargs):
    print(f"{kwargs['parent_block_uuid']} done: {summary['orders']} orders, revenue {summary['revenue']}")


@callback('failure')
def summary_failed(*args, **kwargs):
    print(f"{kwargs['parent_block_uuid']} failed: {kwargs['__error']}")
