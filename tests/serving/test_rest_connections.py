"""REST connections under hostile clients: idle sockets do not starve requests, a trickling
client is cut off at the request timeout, answered connections free their sockets, kept-alive
connections serve several requests, and connections over the cap are answered 503."""

import json
import socket
import time

from tests.serving.conftest import MAX_CONNECTIONS
from tests.serving.rest_client import call
from tests.serving.test_hostile_inputs import (  # noqa: F401 (fixtures)
    assert_still_serving,
    rest_predict,
    stub,
)


def test_idle_connections_do_not_starve_requests(hostile_server, stub):
    idle = [socket.create_connection(("127.0.0.1", hostile_server.rest_port), timeout=5)
            for _ in range(20)]
    idle[0].sendall(b"POST /v1/models/wavenet:predict HTTP/1.1\r\n")  # a partial request
    try:
        started = time.monotonic()
        status, body = call(f"{hostile_server.rest}/v1/models/wavenet")
        assert status == 200, body
        assert time.monotonic() - started < 3
    finally:
        for sock in idle:
            sock.close()
    assert_still_serving(hostile_server, stub)


def test_a_trickling_client_is_cut_off_at_the_request_timeout(hostile_server, stub):
    """One byte every 0.4 s keeps every read inside the 3 s read timeout; the whole-request
    deadline still closes the connection ~3 s after the first byte."""
    sock = socket.create_connection(("127.0.0.1", hostile_server.rest_port), timeout=10)
    request = b"POST /v1/models/wavenet:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
    start, closed = time.monotonic(), False
    try:
        for byte in request * 4:
            sock.sendall(bytes([byte]))
            time.sleep(0.4)
            if time.monotonic() - start > 9:
                break
    except OSError:  # reset or broken pipe: the server closed it
        closed = True
    if not closed:
        sock.settimeout(2)
        try:
            closed = sock.recv(4096) == b""
        except OSError:
            closed = True
    sock.close()
    assert closed and time.monotonic() - start < 9
    status, body = rest_predict(hostile_server, "init_state", {"batch_template": [0]})
    assert status == 200, body


def test_rest_requests_leave_no_open_sockets(hostile_server):
    """Every answered connection is closed for real (its file descriptor freed)."""
    import os

    def open_fds():
        return len(os.listdir(f"/proc/{hostile_server.process.pid}/fd"))

    call(f"{hostile_server.rest}/v1/models/wavenet")
    time.sleep(0.5)
    before = open_fds()
    for _ in range(40):
        status, _ = call(f"{hostile_server.rest}/v1/models/wavenet")
        assert status == 200
    time.sleep(0.5)
    assert open_fds() - before < 5


def test_kept_alive_connection_serves_several_requests(hostile_server):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", hostile_server.rest_port, timeout=10)
    try:
        for batch in (1, 2, 3):
            body = json.dumps({"signature_name": "init_state",
                               "inputs": {"batch_template": [0] * batch}})
            connection.request("POST", "/v1/models/wavenet:predict", body,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200, answer
            assert len(answer["outputs"]["new_state_index"]) == batch
    finally:
        connection.close()


def _hold_connections(port, count):
    """`count` idle connections the server has accepted and holds. Connections of earlier
    tests that the server has not closed yet still count against its cap, so a new one may
    be answered 503 at once: such ones (readable: they got an answer) are replaced."""
    import select

    held = []
    for _ in range(5):
        held += [socket.create_connection(("127.0.0.1", port), timeout=5)
                 for _ in range(count - len(held))]
        time.sleep(0.3)  # the server accepts them (or refuses them at once)
        answered, _, _ = select.select(held, [], [], 0)
        for sock in answered:
            sock.close()
        held = [sock for sock in held if sock not in answered]
        if len(held) == count:
            return held
    raise AssertionError(f"the server did not hold {count} idle connections")


def test_connections_over_the_limit_are_answered_503(hostile_server, stub):
    idle = _hold_connections(hostile_server.rest_port, MAX_CONNECTIONS)
    try:
        status, body = call(f"{hostile_server.rest}/v1/models/wavenet")
        assert status == 503, body
        assert str(MAX_CONNECTIONS) in body["error"] and "--rest_api_max_connections" in \
            body["error"]
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while call(f"{hostile_server.rest}/v1/models/wavenet")[0] != 200:
        assert time.monotonic() < deadline, "closed connections were not released"
        time.sleep(0.1)
    assert_still_serving(hostile_server, stub)
