"""JSON logs, one object a line, in the shape Cloud Logging reads: `severity`, `message`, an
RFC 3339 `time`, and the trace and span of the request that wrote them
(`logging.googleapis.com/trace`, `.../spanId`), so that one query shows a request's lines
across the three services. The request id is there too, traced or not."""

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from asgi_correlation_id import CorrelationIdFilter
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"


class CloudFormatter(JsonFormatter):
    """`project`: the Google Cloud project, which Cloud Logging wants in the trace's name."""

    def __init__(self, *args: Any, project: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["severity"] = record.levelname
        log_record.pop("levelname", None)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            trace_id = format(context.trace_id, "032x")
            log_record[TRACE_FIELD] = (
                f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            )
            log_record[SPAN_FIELD] = format(context.span_id, "016x")
            log_record[SAMPLED_FIELD] = context.trace_flags.sampled


def log_handler(service: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CorrelationIdFilter(uuid_length=32, default_value="-"))
    handler.setFormatter(
        CloudFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            rename_fields={"asctime": "time", "correlation_id": "request_id", "name": "logger"},
            static_fields={"service": service},
            project=os.environ.get("GOOGLE_CLOUD_PROJECT"),
        )
    )
    return handler


def configure_logging(service: str, level: str = "INFO") -> None:
    root = logging.getLogger()
    root.handlers[:] = [log_handler(service)]
    root.setLevel(level.upper())
    # uvicorn's own handlers would print plain text beside ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
