

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
