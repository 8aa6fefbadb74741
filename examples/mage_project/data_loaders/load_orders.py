if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@data_loader
def load_data(*args, **kwargs):
    """Orders of the run's day (a fixed sample; a real loader would query by kwargs['ds'])."""
    day = kwargs['execution_date'].strftime('%Y-%m-%d')
    return [
        {'order_id': 1, 'day': day, 'qty': 2, 'unit_price': 9.5},
        {'order_id': 2, 'day': day, 'qty': 1, 'unit_price': 30.0},
        {'order_id': 3, 'day': day, 'qty': 4, 'unit_price': 2.25},
    ]


@test
def test_output(output, *args) -> None:
    assert len(output) > 0, 'no orders loaded'
