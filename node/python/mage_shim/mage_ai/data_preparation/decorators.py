"""Mage's block decorators. As in Mage, they return the function unchanged: kiln's runner runs a
block file with its own collecting decorators in the file's globals (Mage's
`if 'data_loader' not in globals()` guard then skips this import). The mark they leave lets the
runner find the functions of a file that imports them without that guard."""


def _mark(name):
    def decorator(function):
        function.__kiln_decorator__ = name
        return function

    decorator.__name__ = name
    decorator.__doc__ = f"Marks the block's @{name} function."
    return decorator


data_loader = _mark("data_loader")
transformer = _mark("transformer")
data_exporter = _mark("data_exporter")
sensor = _mark("sensor")
custom = _mark("custom")
test = _mark("test")
condition = _mark("condition")
on_success = _mark("on_success")
on_failure = _mark("on_failure")

_CALLBACK_STATUSES = ("success", "failure", "cancelled")


def callback(status="success"):
    """Mage's @callback: bare for a success callback, or @callback('success'|'failure'|'cancelled')."""
    if callable(status):
        status.__kiln_decorator__ = "callback"
        status.__kiln_callback_status__ = "success"
        return status
    if status not in _CALLBACK_STATUSES:
        raise ValueError(f"@callback('{status}'): the status must be one of {', '.join(_CALLBACK_STATUSES)}")

    def inner(function):
        function.__kiln_decorator__ = "callback"
        function.__kiln_callback_status__ = status
        return function

    return inner
