"""The line-delimited JSON channel between a block's Python process and the kiln process that
started it. kiln writes the request (one line), then replies to calls, on the process's original
stdin; the runner writes logs, calls and the outcome on a private copy of its original stdout.
fds 0 and 1 are then pointed elsewhere, so nothing the block prints or starts can corrupt it."""

import json
import os
import sys
import threading

_channel = None


class Channel:
    def __init__(self, read_fd, write_fd):
        self._in = os.fdopen(read_fd, "rb")
        self._out = os.fdopen(write_fd, "w", encoding="utf-8")
        self._send_lock = threading.Lock()
        # one call at a time: a reply is the next line kiln writes
        self._call_lock = threading.Lock()
        self._next_id = 0

    def read_request(self):
        line = self._in.readline()
        if not line:
            raise SystemExit("kiln runner: no request on stdin")
        return json.loads(line)

    def send(self, message):
        text = json.dumps(message, allow_nan=False, separators=(",", ":"))
        with self._send_lock:
            self._out.write(text + "\n")
            self._out.flush()

    def call(self, method, params):
        """Asks kiln to do something for the block (trigger a pipeline, read a secret, ...)."""
        with self._call_lock:
            self._next_id += 1
            call_id = self._next_id
            self.send({"t": "call", "id": call_id, "method": method, "params": params})
            line = self._in.readline()
            if not line:
                raise RuntimeError(f"kiln went away while the block waited for {method}")
            reply = json.loads(line)
            if reply.get("id") != call_id:
                raise RuntimeError(f"kiln runner: reply {reply.get('id')} to call {call_id}")
            if "error" in reply:
                raise KilnCallError(reply["error"])
            return reply.get("result")


class KilnCallError(Exception):
    """kiln refused or failed a call the block made (the message says why)."""


def open_channel():
    """Takes fds 0 and 1 for the channel; the block sees an empty stdin and an fd 1 that goes to stderr."""
    global _channel
    read_fd = os.dup(0)
    write_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # what a subprocess or C code writes to fd 1 reaches kiln's log as stderr lines
    os.dup2(2, 1)
    _channel = Channel(read_fd, write_fd)
    return _channel


def current():
    """The channel, or an error saying these helpers only work inside kiln's runner."""
    if _channel is None:
        raise RuntimeError("this function talks to kiln and works only inside a block run by kiln")
    return _channel


def call(method, params):
    return current().call(method, params)


class LogStream:
    """sys.stdout/sys.stderr for the block: each complete line becomes a log line of the block run."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, channel, level):
        self._channel = channel
        self._level = level
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._buffer += text
            lines = self._buffer.split("\n")
            self._buffer = lines.pop()
        for line in lines:
            self._channel.send({"t": "log", "level": self._level, "line": line})
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest:
            self._channel.send({"t": "log", "level": self._level, "line": rest})

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def fileno(self):
        # C-level writers get fd 2, which kiln logs too
        return 2


def install_streams(channel):
    sys.stdout = LogStream(channel, "stdout")
    sys.stderr = LogStream(channel, "stderr")
