if 'condition' not in globals():
    from mage_ai.data_preparation.decorators import condition


@condition
def evaluate_condition(summary, *args, **kwargs) -> bool:
    # the downstream pipeline is only worth starting when there were orders
    return summary['orders'] > 0
