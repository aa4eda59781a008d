"""Reading an uploaded request body with a size limit, before anything is decoded."""

from __future__ import annotations

from fastapi import Request

from convlens.errors import ConvlensError
from convlens.web.store import TooLarge


async def read_body(request: Request, limit: int, what: str, fix: str, kinds: str) -> bytes:
    """The request body, refused past ``limit`` bytes without reading the rest.

    ``what`` names the upload in the sentences ("the upload", "the model file"),
    ``fix`` ends a too-large sentence ("choose a smaller image."), ``kinds`` says
    what to choose when the body is empty ("a PNG or JPEG file").
    """
    limit_text = f"{limit // (1024 * 1024)} MB"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"{what} is {int(declared) / 1e6:.1f} MB, over the {limit_text} limit; {fix}"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"{what} is over the {limit_text} limit; {fix}")
    if not body:
        raise ConvlensError(f"the upload is empty; choose {kinds}.")
    return bytes(body)
