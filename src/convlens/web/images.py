"""The images panel: images in. Uploads, built-in pictures, test-set samples.

    POST /api/images              an uploaded PNG/JPEG/BMP (the raw bytes as body)
    GET  /api/images/builtin/{n}  a built-in picture
    GET  /api/samples             test-set images of one class

Each answer is an ImageInfo: the image is kept in the explorer's ImageStore
for this session and later requests name it by its id. The panel has no
script of its own: its page part is the image chooser inside
static/js/playground.js (the image source of part 1), which every other part
then follows.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from convlens.data import datasets
from convlens.data.datasets import Split
from convlens.images import decode_image
from convlens.inspect.journey import class_index, images_of_class
from convlens.lab.sample_images import facade
from convlens.runs.loading import dataset_of
from convlens.web.bodies import ERRORS, ErrorBody
from convlens.web.state import Explorer
from convlens.web.store import LoadedRun, NotFound, StoredImage
from convlens.web.uploads import read_body

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_SAMPLES = "fashion-mnist"  # the test set sampled when no run is chosen
BUILTIN_IMAGES = {"facade": ("A building front (256x256): vertical and horizontal lines", facade)}


class ImageInfo(BaseModel):
    """An image the server holds for this session; later requests name it by ``id``."""

    id: str = Field(description="handle for later requests (content hash)")
    name: str = Field(description="where it came from: a file name, a built-in, a test image")
    height: int
    width: int
    channels: int
    png: str = Field(description="the image as a PNG data URL, grayscale luma as filtered")
    colour_png: str | None = Field(
        None, description="a colour image as it is (thumbnails), as a PNG data URL"
    )
    label: str | None = Field(None, description="the class of a test-set image")
    test_index: int | None = Field(None, description="position in the test split")


class SampleBody(BaseModel):
    """Test-set images of one class."""

    run: str | None
    dataset: str
    class_index: int
    class_name: str
    images: list[ImageInfo]


def image_info(image: StoredImage) -> dict:
    """An ImageInfo for a stored image."""
    return {
        "id": image.id,
        "name": image.name,
        "height": int(image.pixels.shape[0]),
        "width": int(image.pixels.shape[1]),
        "channels": int(image.pixels.shape[2]),
        "png": image.luma_png,
        # test-set samples only: their thumbnails; an upload may be 40 megapixels
        "colour_png": image.colour_png if image.test_index is not None else None,
        "label": image.label,
        "test_index": image.test_index,
    }


async def read_upload(request: Request) -> bytes:
    """An image upload's body, refused past MAX_UPLOAD_BYTES without reading the rest."""
    return await read_body(
        request, MAX_UPLOAD_BYTES, "the upload", "choose a smaller image.", "a PNG or JPEG file"
    )


def default_sample_classes() -> tuple[str, ...]:
    """The class names of the test set sampled without a run (known without reading it)."""
    return tuple(datasets.SOURCES[DEFAULT_SAMPLES].class_names)


class SampleSource:
    """Test-set images by class: the run's test split, or DEFAULT_SAMPLES's without a run."""

    def __init__(self) -> None:
        self._default: tuple[str, Split, tuple[str, ...]] | None = None
        self._lock = threading.Lock()

    def default_split(self) -> tuple[str, Split, tuple[str, ...]]:
        """Fashion-MNIST's test split and class names, read once."""
        with self._lock:
            if self._default is None:
                loaded = datasets.load(DEFAULT_SAMPLES)
                self._default = (loaded.name, loaded.test, loaded.class_names)
            return self._default

    def samples(self, loaded: LoadedRun | None, class_choice: str, count: int, start: int):
        """(dataset, class index, class name, [(test index, uint8 image)]) of one class."""
        if loaded is None:
            dataset, test, names = self.default_split()
        else:
            dataset, test, names = (
                dataset_of(loaded.run),
                loaded.test_split(),
                loaded.run.class_names,
            )
        chosen = class_index(class_choice, names)
        indices = images_of_class(test.labels, chosen, start + count, names[chosen])
        picked = indices[start:]
        return dataset, chosen, names[chosen], [(int(i), test.images[i]) for i in picked]


def router(state: Explorer) -> APIRouter:
    """Images in, kept in the explorer's ImageStore; test splits read once per router."""
    samples_source = SampleSource()
    routes = APIRouter()

    @routes.post(
        "/api/images",
        response_model=ImageInfo,
        responses={**ERRORS, 413: {"model": ErrorBody}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the image file's bytes (PNG, JPEG, BMP), at most 10 MB; "
                "the X-Filename header names it",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def upload(request: Request) -> dict:
        """Keep an uploaded image for this session and return its id."""
        body = await read_upload(request)
        name = request.headers.get("x-filename", "the upload")[:200] or "the upload"
        pixels = await run_in_threadpool(decode_image, body, name)
        return image_info(state.images.add(pixels, name))

    @routes.get("/api/images/builtin/{name}", response_model=ImageInfo, responses=ERRORS)
    def builtin(name: str) -> dict:
        """A picture that ships with convlens."""
        if name not in BUILTIN_IMAGES:
            raise NotFound(
                f"there is no built-in image {name!r}; choose one of {', '.join(BUILTIN_IMAGES)}."
            )
        pixels = BUILTIN_IMAGES[name][1]()[:, :, None]
        return image_info(state.images.add(pixels, name))

    @routes.get("/api/samples", response_model=SampleBody, responses=ERRORS)
    def samples(
        class_choice: str = Query(title="Class", description="a class name or number"),
        count: int = Query(6, ge=1, le=48, title="How many"),
        start: int = Query(0, ge=0, description="skip this many images of the class"),
        run: str | None = Query(None, description="a run's name: its dataset's test split"),
    ) -> dict:
        """Test-set images of one class (Fashion-MNIST's when no run is given)."""
        loaded = None if run is None else state.runs.get(run)
        dataset, index, name, found = samples_source.samples(loaded, class_choice, count, start)
        images = [
            image_info(state.images.add(pixels, f"test image {i}", name, i)) for i, pixels in found
        ]
        return {
            "run": run,
            "dataset": dataset,
            "class_index": index,
            "class_name": name,
            "images": images,
        }

    return routes
