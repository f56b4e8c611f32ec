"""A profile service in Python that joins latency-lab's traces.

The seeds' Flask aggregator, reduced to the standard library so it needs
nothing but the OpenTelemetry SDK: GET /profile/{id} calls the lab's user
service and order service one after the other and answers with both. It is
instrumented the way an OpenTelemetry user writes it by hand: a SERVER span
per request (continuing the caller's trace when a traceparent comes in), a
CLIENT span per call with the trace context injected into its headers, and
the SDK's batch processor with its defaults, which sends spans every 5 s.

Everything is configured by the standard variables:

    OTEL_SERVICE_NAME=python-profile
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318   # latency-lab up / view
    USER_SERVICE_URL=http://127.0.0.1:5001 ORDER_SERVICE_URL=http://127.0.0.1:5002
    PORT=8000                                            # 0: any free port

It prints `listening on URL` once it serves; SIGTERM or Ctrl-C stops it and
flushes the spans not yet sent.
"""

import json
import os
import signal
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

provider = TracerProvider()  # service.name from OTEL_SERVICE_NAME
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("python-profile")

USERS = os.environ["USER_SERVICE_URL"].rstrip("/")
ORDERS = os.environ["ORDER_SERVICE_URL"].rstrip("/")


def call(url, route):
    """GET url inside a CLIENT span, its context in the request's headers."""
    with tracer.start_as_current_span(
        "GET",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": "GET", "url.full": url, "url.template": route},
    ) as span:
        headers = {}
        propagate.inject(headers)
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            span.set_attribute("http.response.status_code", response.status)
            return json.load(response)


class Profile(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "profile":
            self.send_error(404, "try GET /profile/{id}")
            return
        user_id = parts[1]
        context = propagate.extract(dict(self.headers))
        with tracer.start_as_current_span(
            "GET /profile/{id}",
            context=context,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.route": "/profile/{id}"},
        ) as span:
            try:
                user = call(f"{USERS}/users/{user_id}", "/users/{id}")
                orders = call(f"{ORDERS}/users/{user_id}/orders", "/users/{id}/orders")
            except Exception as error:  # a dead dependency: a 502 and an error span
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.set_attribute("http.response.status_code", 502)
                self.send_error(502, str(error))
                return
            span.set_attribute("http.response.status_code", 200)
            trace_id = format(span.get_span_context().trace_id, "032x")
        body = json.dumps({"trace_id": trace_id, "user": user, "orders": orders}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per request would drown the lab's output


def stop(_signum, _frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Profile)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        provider.shutdown()  # sends what the batch still holds
