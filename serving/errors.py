"""Serving errors carry a canonical status code, mapped to gRPC codes and HTTP statuses as
TF Serving maps them (`tensorflow_serving/model_servers/http_server.cc`)."""

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RESOURCE_EXHAUSTED": 429,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class ServingError(Exception):
    """An error answered to a client: `code` is a canonical status name (`NOT_FOUND`, ...)."""

    def __init__(self, code, message):
        if code not in HTTP_STATUS:
            raise ValueError(f"Unknown status code {code!r}; use one of {sorted(HTTP_STATUS)}.")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS[self.code]

    def grpc_code(self):
        import grpc

        name = "RESOURCE_EXHAUSTED" if self.code == "PAYLOAD_TOO_LARGE" else self.code
        return grpc.StatusCode[name]
