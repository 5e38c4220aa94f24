"""The yardstick for the status benchmark: a bare Starlette JSON endpoint on the same uvicorn stack."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def status(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "code": 200,
            "message": "success",
            "data": {"task_id": request.query_params.get("task_id"), "status": "SUCCESS"},
        }
    )


app = Starlette(routes=[Route("/api/status", status)])
