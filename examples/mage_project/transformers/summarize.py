if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def transform(orders, *args, **kwargs):
    return {
        'day': kwargs['ds'],
        'orders': len(orders),
        'revenue': round(sum(o['total'] for o in orders), 2),
    }
