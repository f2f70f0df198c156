"""Schemathesis hooks for Opsdeck: how to send the one body type it does not know."""

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    # `POST /api/v1/ingest/logs` takes log lines as text; anything else goes as its JSON text.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    import json

    return json.dumps(value).encode()
