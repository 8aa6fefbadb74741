"""Runs one Mage block file as Mage does: the file is executed with the block type's decorator
(and @test) collecting the functions it decorates, then the block function is called with the
upstream outputs positionally and Mage's runtime variables as **kwargs. Callback and conditional
files run the same way, with @callback/@on_success/@on_failure or @condition."""

import datetime
import importlib.util
import inspect
import logging
import os
import sys
import time
import traceback

from . import channel as channel_module
from . import codec

RUNNER_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM_ROOT = os.path.join(RUNNER_ROOT, "mage_shim")
# kwargs Mage passes as datetimes; kiln sends them as ISO 8601 strings
DATETIME_KWARGS = ("execution_date", "interval_start_datetime", "interval_end_datetime", "interval_start_datetime_previous")
CALLBACK_STATUSES = ("success", "failure", "cancelled")


class BlockTestsFailed(Exception):
    """One or more @test functions failed; the message has their assertion messages."""


def _parse_datetime(text):
    if not isinstance(text, str):
        return text
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text


def _collector(functions):
    def decorate(function):
        functions.append(function)
        return function

    return decorate


def _callback_collector(functions):
    """Mage's @callback: bare (a success callback) or @callback('success'|'failure'|'cancelled')."""

    def decorate(status="success", *args, **kwargs):
        if inspect.isfunction(status):
            functions.append(("success", status))
            return status
        if status not in CALLBACK_STATUSES:
            raise ValueError(f"@callback('{status}'): the status must be one of {', '.join(CALLBACK_STATUSES)}")

        def inner(function):
            functions.append((status, function))
            return function

        return inner

    return decorate


def _accepts_kwargs(function):
    try:
        return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return True


def _call(function, args, kwargs):
    """As Mage: **kwargs only for a function that takes them."""
    if kwargs and _accepts_kwargs(function):
        return function(*args, **kwargs)
    return function(*args)


def _setup_paths(project_root):
    # the project's own modules (utils/, ...) import as in Mage, which puts the repo and its parent on sys.path
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != RUNNER_ROOT]
    sys.path.insert(0, project_root)
    sys.path.append(os.path.dirname(project_root))
    if importlib.util.find_spec("mage_ai") is None:
        sys.path.append(SHIM_ROOT)


def _setup_logging(chan):
    class ChannelHandler(logging.Handler):
        def emit(self, record):
            try:
                text = self.format(record)
            except Exception:  # a bad format string in the block's own logging call
                text = str(record.msg)
            for line in text.split("\n"):
                chan.send({"t": "log", "level": record.levelname.lower(), "line": line})

    handler = ChannelHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _trimmed_traceback(error):
    """The traceback without the runner's own frames: what the block's author needs to see."""
    te = traceback.TracebackException.from_exception(error)
    node = te
    while node is not None:
        node.stack = traceback.StackSummary.from_list([f for f in node.stack if not f.filename.startswith(RUNNER_ROOT + os.sep)])
        node = node.__cause__ or node.__context__
    return "".join(te.format()).rstrip()


def _load(path, decorators):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    code = compile(source, path, "exec")
    scope = {"__name__": "__mage_block__", "__file__": path, "__builtins__": __builtins__}
    scope.update(decorators)
    exec(code, scope)
    return scope


def _tagged(scope, name):
    """Functions the shim's decorator marked, for files that import it without Mage's globals() guard."""
    return [v for v in scope.values() if callable(v) and getattr(v, "__kiln_decorator__", None) == name]


def _run_tests(tests, output, kwargs, block_uuid):
    failures = []
    for test in tests:
        try:
            _call(test, [output], kwargs)
        except AssertionError as error:
            message = str(error).strip()
            if not message:
                frame = traceback.extract_tb(error.__traceback__)[-1]
                message = f"{(frame.line or 'assert').strip()} (line {frame.lineno})"
            print("--------------------------------------------------------------")
            print(f"FAIL: {test.__name__} (block: {block_uuid})")
            print(_trimmed_traceback(error))
            failures.append(f"{test.__name__}: {message}")
    if tests:
        print(f"{len(tests) - len(failures)}/{len(tests)} tests passed.")
    if failures:
        raise BlockTestsFailed(
            f"{len(failures)} of {len(tests)} tests failed for block {block_uuid}: " + "; ".join(failures)
        )


def _run_block(request, inputs, kwargs):
    block_type = request["block_type"]
    functions, tests = [], []
    scope = _load(request["module_path"], {block_type: _collector(functions), "test": _collector(tests)})
    functions = functions or _tagged(scope, block_type)
    tests = tests or _tagged(scope, "test")
    if not functions:
        raise RuntimeError(
            f"{request['module_relative']}: no function is decorated with @{block_type} "
            f"(a {block_type} block's file needs one)"
        )
    function = functions[0]
    if block_type == "sensor":
        poll = float(request.get("poll_interval") or 60)
        polls = 0
        while True:
            polls += 1
            if _call(function, inputs, kwargs):
                break
            print(f"sensor condition not met (poll {polls}); next poll in {poll:g} s")
            time.sleep(poll)
        output = True
    else:
        output = _call(function, inputs, kwargs)
    _run_tests(tests, output, kwargs, request["block_uuid"])
    return output


def _run_callback(request, inputs, kwargs):
    legacy = {"success": [], "failure": []}
    decorated = []
    scope = _load(
        request["module_path"],
        {
            "callback": _callback_collector(decorated),
            "on_success": _collector(legacy["success"]),
            "on_failure": _collector(legacy["failure"]),
        },
    )
    status = request.get("callback_status")
    if status not in CALLBACK_STATUSES:
        raise ValueError(f"callback_status: expected one of {', '.join(CALLBACK_STATUSES)}, got {status!r}")
    # a file that imports the decorators without Mage's globals() guard replaced some collectors
    seen = {id(f) for _, f in decorated} | {id(f) for fs in legacy.values() for f in fs}
    decorated += [(getattr(f, "__kiln_callback_status__", "success"), f) for f in _tagged(scope, "callback") if id(f) not in seen]
    legacy["success"] += [f for f in _tagged(scope, "on_success") if id(f) not in seen]
    legacy["failure"] += [f for f in _tagged(scope, "on_failure") if id(f) not in seen]
    called = 0
    for function in legacy.get(status, []):
        _call(function, [], kwargs)
        called += 1
    for wanted, function in decorated:
        if wanted == status:
            _call(function, inputs, kwargs)
            called += 1
    return called


def _run_condition(request, inputs, kwargs):
    conditions = []
    scope = _load(request["module_path"], {"condition": _collector(conditions)})
    conditions = conditions or _tagged(scope, "condition")
    result = True
    for function in conditions:
        result = bool(_call(function, inputs, kwargs)) and result
    return result


def main():
    chan = channel_module.open_channel()
    request = chan.read_request()
    channel_module.install_streams(chan)
    _setup_logging(chan)
    _setup_paths(request["project_root"])
    os.chdir(request["project_root"])
    try:
        inputs = [codec.decode(v) for v in request.get("inputs", [])]
        kwargs = {k: codec.decode(v) for k, v in (request.get("kwargs") or {}).items()}
        for key in DATETIME_KWARGS:
            if key in kwargs:
                kwargs[key] = _parse_datetime(kwargs[key])
        kwargs.setdefault("logger", logging.getLogger(f"{request['pipeline_uuid']}.{request['block_uuid']}"))
        mode = request.get("mode", "block")
        if mode == "block":
            output = _run_block(request, inputs, kwargs)
            message = {"t": "done", "output": codec.encode(output)}
        elif mode == "callback":
            message = {"t": "done", "called": _run_callback(request, inputs, kwargs)}
        elif mode == "condition":
            message = {"t": "done", "condition": _run_condition(request, inputs, kwargs)}
        else:
            raise ValueError(f"kiln runner: unknown mode {mode!r}")
    except BlockTestsFailed as error:
        sys.stdout.flush()
        chan.send({"t": "failed", "kind": "tests", "error": str(error)})
        return 1
    except BaseException as error:  # the block's own failure, whatever it raised (SystemExit too)
        sys.stdout.flush()
        sys.stderr.flush()
        if isinstance(error, KeyboardInterrupt):
            raise
        chan.send({"t": "failed", "kind": "exception", "error": _trimmed_traceback(error)})
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    chan.send(message)
    return 0
