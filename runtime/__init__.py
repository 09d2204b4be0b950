"""The model runtime: what every BraNet model service shares (torch required).

`task.ModelTask` is one model behind the service; `service.create_model_service` builds the
FastAPI app that loads tasks in its lifespan and answers health, readiness and `/v1/models`;
`files`, `precision`, `compilation` and `allocator` are the load-time helpers the tasks use.
"""
