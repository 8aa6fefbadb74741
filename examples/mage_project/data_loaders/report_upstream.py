if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load_data(*args, **kwargs):
    print(f"started by orders_etl for {kwargs.get('upstream_date')}")
    return {'upstream_date': str(kwargs.get('upstream_date'))}
