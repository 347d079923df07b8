"""Plain HTTP requests written from TF Serving's REST documentation (urllib only)."""

import json
import urllib.error
import urllib.request


def call(url, body=None, raw=None, method=None):
    """-> (HTTP status, decoded JSON body)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None
                                                                       else "GET"))
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
