"""REST connections: idle sockets wait in a selector, only requests take pool threads.

A connection is handed to the fixed-size thread pool when it has bytes to read and goes
back to the selector after each keep-alive response, so clients that connect and say
nothing (slowloris) hold a file descriptor, not a thread; they are closed after
`timeout_s`. At most `max_connections` are open at once: more are answered 503 and closed.
While a request is read, each socket read waits at most `timeout_s`, and the whole request
(line, headers and body) must arrive within `timeout_s` of its first byte (`DeadlineReader`):
a client that trickles a byte now and then cannot hold a thread for longer.
"""

import concurrent.futures
import http.server
import io
import json
import selectors
import socket
import threading
import time

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 256


class DeadlineReader(io.RawIOBase):
    """A socket's reads with one deadline for the whole request: each read waits at most
    until `seconds` after the reader was made, then raises `TimeoutError` (which
    `BaseHTTPRequestHandler` answers by closing the connection)."""

    def __init__(self, sock, seconds):
        super().__init__()
        self._sock, self._raw = sock, socket.SocketIO(sock, "rb")
        self._deadline = time.monotonic() + float(seconds)

    def readable(self):
        return True

    def close(self):
        if not self.closed:
            self._raw.close()  # drops its reference, so closing the socket closes the fd
        super().close()

    def readinto(self, buffer):
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive within the REST timeout")
        self._sock.settimeout(remaining)
        return self._raw.readinto(buffer)


class IdleConnections:
    """A thread that watches idle connections and dispatches the readable ones."""

    def __init__(self, on_readable, on_expired, timeout_s):
        self._on_readable, self._on_expired = on_readable, on_expired
        self.timeout_s = float(timeout_s)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending, self._lock = [], threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rest-idle", daemon=True)
        self._thread.start()

    def add(self, sock, address):
        with self._lock:
            self._pending.append((sock, address))
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _run(self):
        next_sweep = time.monotonic()
        while not self._stopped.is_set():
            self._register_pending()
            for key, _ in self._selector.select(timeout=0.5):
                if key.data is None:
                    self._drain_wake()
                    continue
                self._selector.unregister(key.fileobj)
                self._on_readable(key.fileobj, key.data[0])
            if time.monotonic() >= next_sweep:
                self._expire()
                next_sweep = time.monotonic() + 0.5

    def _register_pending(self):
        with self._lock:
            pending, self._pending = self._pending, []
        for sock, address in pending:
            try:
                self._selector.register(sock, selectors.EVENT_READ,
                                        (address, time.monotonic()))
            except (ValueError, OSError):  # closed meanwhile
                self._on_expired(sock)

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _expire(self):
        now = time.monotonic()
        for key in list(self._selector.get_map().values()):
            if key.data is not None and now - key.data[1] > self.timeout_s:
                self._selector.unregister(key.fileobj)
                self._on_expired(key.fileobj)

    def close(self):
        self._stopped.set()
        self.add(None, None)  # wakes the thread
        self._thread.join(timeout=2)
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                self._on_expired(key.fileobj)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


class BoundedHTTPServer(http.server.HTTPServer):
    """An HTTPServer whose requests run on a fixed-size thread pool, with idle connections
    parked in `IdleConnections` and at most `max_connections` open.

    `request_queue_size` is the listen backlog: socketserver's default of 5 resets
    connections as soon as a few more clients than that connect at once."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, handler, manager, num_threads, max_request_bytes,
                 timeout_s=DEFAULT_TIMEOUT_S, max_connections=DEFAULT_MAX_CONNECTIONS):
        super().__init__(address, handler)
        self.manager = manager
        self.max_request_bytes = int(max_request_bytes)
        self.timeout_s = float(timeout_s)
        self.max_connections = int(max_connections)
        self._open, self._open_lock = 0, threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=num_threads, thread_name_prefix="rest")
        self._idle = IdleConnections(self._dispatch, self._close, self.timeout_s)

    def process_request(self, request, client_address):
        with self._open_lock:
            refused = self._open >= self.max_connections
            self._open += 0 if refused else 1
        if refused:
            _refuse(request, self.max_connections)
            return
        self._idle.add(request, client_address)

    def _dispatch(self, request, client_address):
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request, client_address):
        keep = False
        try:
            handler = self.RequestHandlerClass(request, client_address, self)
            keep = not handler.close_connection
        except Exception:
            self.handle_error(request, client_address)
        if keep:
            self._idle.add(request, client_address)
        else:
            self._close(request)

    def _close(self, request):
        if request is None:
            return
        self.shutdown_request(request)
        with self._open_lock:
            self._open -= 1

    def server_close(self):
        super().server_close()
        self._idle.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _refuse(request, limit):
    body = json.dumps({"error": f"The server has {limit} open connections, its limit "
                                f"(--rest_api_max_connections); retry later."}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        request.settimeout(1.0)
        request.sendall(head + body)
    except OSError:
        pass
    finally:
        try:
            request.close()
        except OSError:
            pass
