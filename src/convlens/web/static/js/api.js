// The explorer's HTTP client: one function per endpoint of the panels (src/convlens/web/<panel>.py,
// each with its request and response bodies; the shared ones in web/bodies.py).
// Every 4xx answer is {"error": "one sentence"}; it becomes an ApiError with that sentence.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function answer(response) {
  let body = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("application/json")) {
    try {
      body = await response.json();
    } catch {
      body = null;
    }
  }
  if (response.ok) {
    if (body === null) {
      throw new ApiError("The server sent an answer the page cannot read.", response.status);
    }
    return body;
  }
  if (body && typeof body.error === "string") throw new ApiError(body.error, response.status);
  const sentence = `The server could not answer (HTTP ${response.status}); see its log.`;
  throw new ApiError(sentence, response.status);
}

// The notebook's Explorer widget (convlens.Explorer) sets globalThis.convlensFetch: the same
// requests, sent over the widget's channel and answered in the kernel by this application.
const send = (url, options) => (globalThis.convlensFetch || fetch)(url, options);

async function request(url, options = {}) {
  let response;
  try {
    response = await send(url, options);
  } catch {
    throw new ApiError("The server cannot be reached; is `convlens explore` still running?", 0);
  }
  return answer(response);
}

function post(url, body) {
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** GET /api/info -> InfoBody */
export const info = () => request("/api/info");

/** GET /api/images/builtin/{name} -> ImageInfo */
export const builtinImage = (name) => request(`/api/images/builtin/${encodeURIComponent(name)}`);

/** GET /api/samples?class_choice=&count=[&run=] -> SampleBody */
export function samples(classChoice, count, run) {
  const query = new URLSearchParams({ class_choice: String(classChoice), count: String(count) });
  if (run) query.set("run", run);
  return request(`/api/samples?${query}`);
}

/** POST /api/images (raw bytes, X-Filename) -> ImageInfo */
export function uploadImage(blob, filename) {
  return request("/api/images", {
    method: "POST",
    headers: {
      "Content-Type": blob.type || "application/octet-stream",
      // A header carries Latin-1 only: keep the name readable, drop what it cannot carry.
      "X-Filename": String(filename).replace(/[^\x20-\x7e]/g, "_"),
    },
    body: blob,
  });
}

/** POST /api/models[?dataset=] (raw bytes of a .keras/.h5/.onnx file, X-Filename) -> ImportedModelBody */
export function uploadModel(file, filename, dataset) {
  const query = dataset ? `?${new URLSearchParams({ dataset })}` : "";
  return request(`/api/models${query}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/octet-stream",
      "X-Filename": String(filename).replace(/[^\x20-\x7e]/g, "_"),
    },
    body: file,
  });
}

/** POST /api/convolve (ConvolveRequest) -> ConvolveBody */
export const convolve = (body) => post("/api/convolve", body);

/** POST /api/explain (ExplainRequest) -> ExplainBody */
export const explain = (body) => post("/api/explain", body);

/** POST /api/explain-pool (ExplainPoolRequest) -> ExplainPoolBody */
export const explainPool = (body) => post("/api/explain-pool", body);

/** POST /api/journey (JourneyRequest) -> JourneyBody */
export const journey = (body) => post("/api/journey", body);

/** POST /api/class-filter (ClassFilterRequest) -> ClassFilterBody */
export const classFilter = (body) => post("/api/class-filter", body);

/** GET /api/models/presets -> {name: {description, model}} */
export const modelPresets = () => request("/api/models/presets");

/**
 * GET /api/attribution/methods?run= -> [{name, title, signed, reads_layer, default?}], or
 * {methods: [...], default: name}: the default (for that run, where the server knows one)
 * is read by why.js's methodMenu.
 */
export const attributionMethods = (run) =>
  request(`/api/attribution/methods${run ? `?run=${encodeURIComponent(run)}` : ""}`);

/** GET /api/models/layer-types -> {type: {description, fields: [{name, kind, choices?}], new}} */
export const layerTypes = () => request("/api/models/layer-types");

/** GET /api/runs/{name}/model -> a model JSON object */
export const runModel = (name) => request(`/api/runs/${encodeURIComponent(name)}/model`);

/** POST /api/models/summary ({model, dataset, fit}) -> ModelSummary; a broken model (or one
 * that cannot learn the dataset's classes): ApiError with .layer */
export async function modelSummary(model, dataset = null, fit = false) {
  const response = await send("/api/models/summary", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model, dataset, fit }),
  }).catch(() => {
    throw new ApiError("The server cannot be reached; is `convlens explore` still running?", 0);
  });
  if (response.status === 400) {
    const body = await response.json();
    const error = new ApiError(body.error, 400);
    error.layer = body.layer ?? null;
    throw error;
  }
  return answer(response);
}

/** GET /api/jobs -> JobsInfo */
export const jobsInfo = () => request("/api/jobs");

/** POST /api/jobs (JobRequest) -> {id, run} */
export const startJob = (body) => post("/api/jobs", body);

/** GET /api/jobs/{id} -> JobStatus */
export const jobStatus = (id) => request(`/api/jobs/${encodeURIComponent(id)}`);

/** DELETE /api/jobs/{id} -> JobStatus */
export const cancelJob = (id) =>
  request(`/api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });

/** The URL of a job's Server-Sent Events. */
export const jobEventsUrl = (id) => `/api/jobs/${encodeURIComponent(id)}/events`;

/** GET /api/compare?run=A&run=B -> CompareBody */
export function compareRuns(names) {
  const query = new URLSearchParams();
  for (const name of names) query.append("run", name);
  return request(`/api/compare?${query}`);
}

/** GET /api/compare/default -> {runs: the pair compared first} */
export const compareDefault = () => request("/api/compare/default");

/** POST /api/compare/predict ({runs, image, invert}) -> ComparePredictBody */
export const comparePredict = (body) => post("/api/compare/predict", body);
/** POST /api/attribution (AttributionRequest) -> AttributionBody (web/why.py) */
export const attribution = (body) => post("/api/attribution", body);

/** POST /api/portrait (PortraitRequest) -> PortraitBody (web/why.py) */
export const portrait = (body) => post("/api/portrait", body);
