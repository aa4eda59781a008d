// Part 5: train the editor's model from the page and watch it learn. POST /api/jobs starts a
// job; its Server-Sent Events (GET /api/jobs/{id}/events, an EventSource, no polling) grow
// the curves, move the progress bar and redraw the first convolution's filters and one test
// image's maps. A reloaded page finds the running job in GET /api/jobs and reconnects.
//
// Test hooks: #train-dataset #train-recipe #train-epochs #train-seed #train-image;
// #train-start #train-cancel; #train-model (the model's name); #train-error; #train-status
// [data-state]; #train-progress (progress element) and #train-speed; #curve-loss and
// #curve-accuracy (canvases, data-points = curve points drawn); #train-epochs-table
// (tbody tr per epoch); #train-filters and #train-maps (canvases, data-redraws = times drawn);
// #train-watched (the watched test image) and #train-says; #train-message;
// #trainer[data-job] = the job followed.

import * as api from "./api.js";
import { lineChart } from "./charts.js";
import { el, loadImage, paint, percent, pixelScale, showError, tileRect } from "./draw.js";

const $ = (id) => document.getElementById(id);
const FINAL = ["done", "failed", "cancelled"];

function field(label, control) {
  return el("div", { class: "field" }, el("label", { for: control.id, text: label }), control);
}

function duration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

export class Trainer {
  constructor({ onRunWritten = () => {}, onDataset = () => {} } = {}) {
    this.onRunWritten = onRunWritten;
    this.onDataset = onDataset; // (dataset) when another dataset is chosen: the editor follows
    this.model = null; // the editor's {model, fit}, or null while it cannot be built
    this.job = null;
    this.source = null;
    this.root = $("trainer");
    this.build();
    this.reset();
  }

  build() {
    this.dataset = el("select", { id: "train-dataset" });
    this.dataset.addEventListener("change", () => this.onDataset(this.dataset.value));
    this.recipe = el("select", { id: "train-recipe" });
    this.epochs = el("input", { id: "train-epochs", type: "number", min: "1", max: "100", step: "1", value: "1" });
    this.seed = el("input", { id: "train-seed", type: "number", min: "0", step: "1", value: "0" });
    this.image = el("input", { id: "train-image", type: "number", min: "0", step: "1", value: "0" });
    this.startButton = el("button", { type: "button", id: "train-start", class: "button primary", text: "Train" });
    this.cancelButton = el("button", { type: "button", id: "train-cancel", class: "button", text: "Cancel", disabled: true });
    this.startButton.addEventListener("click", () => this.start());
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.modelName = el("strong", { id: "train-model", text: "…" });
    this.error = el("p", { id: "train-error", class: "error", role: "alert", hidden: true });
    this.status = el("p", { id: "train-status", class: "train-status", "aria-live": "polite" });
    this.progress = el("progress", { id: "train-progress", max: "1", value: "0" });
    this.speed = el("span", { id: "train-speed", class: "train-speed mono" });
    this.loss = el("canvas", { id: "curve-loss", class: "curve", role: "img", "aria-label": "Training loss" });
    this.accuracy = el("canvas", { id: "curve-accuracy", class: "curve", role: "img", "aria-label": "Accuracy" });
    this.table = el("table", { id: "train-epochs-table", class: "epochs-table" });
    this.filters = el("canvas", { id: "train-filters", class: "pixelated", role: "img", "aria-label": "First convolution's filters" });
    this.maps = el("canvas", { id: "train-maps", class: "pixelated", role: "img", "aria-label": "The watched image's feature maps" });
    this.watched = el("canvas", { id: "train-watched", class: "pixelated", role: "img", "aria-label": "The watched test image" });
    this.says = el("p", { id: "train-says", class: "train-says" });
    this.filtersCaption = el("p", { class: "caption", id: "train-filters-caption" });
    this.message = el("p", { id: "train-message", class: "train-message" });
    this.root.append(
      el(
        "div",
        { class: "toolbar card trainer-toolbar" },
        el("p", { class: "train-model-line" }, "Model: ", this.modelName, el("span", { class: "note", text: " (from the editor above)" })),
        field("Dataset", this.dataset),
        field("Recipe", this.recipe),
        field("Epochs", this.epochs),
        field("Seed", this.seed),
        field("Watched test image", this.image),
        this.startButton,
        this.cancelButton,
      ),
      this.error,
      el(
        "div",
        { class: "card train-live" },
        el("div", { class: "train-progress-row" }, this.progress, this.speed),
        this.status,
        this.message,
        el("div", { class: "curves" }, this.loss, this.accuracy),
        el(
          "div",
          { class: "watch-row" },
          el("figure", { class: "watch-figure" }, el("figcaption", { class: "block-label", text: "Watched test image" }), this.watched, this.says),
          el("figure", { class: "watch-figure grow" }, el("figcaption", { class: "block-label", text: "First convolution's filters (each on its own scale, white = 0)" }), this.filters, this.filtersCaption),
          el("figure", { class: "watch-figure grow" }, el("figcaption", { class: "block-label", text: "Its feature maps of the watched image" }), this.maps),
        ),
        el("div", { class: "table-scroll" }, this.table),
      ),
    );
  }

  /** GET /api/jobs: the datasets and recipes, and a running job to reconnect to. */
  async setOptions(info) {
    this.dataset.replaceChildren(...info.datasets.map((d) => el("option", { value: d, text: d })));
    const offered = info.recipes.filter((r) => r === "fast" || r === "lesson");
    this.recipe.replaceChildren(...offered.map((r) => el("option", { value: r, text: r })));
    if (info.current) this.follow(info.current.id, true);
    this.onDataset(this.dataset.value);
  }

  /** The editor's model as a job trains it ({model, fit}), or null while it cannot be built. */
  setModel(asked) {
    this.model = asked;
    this.modelName.textContent = asked ? asked.model.name || "sequential" : "(fix the model in the editor)";
    this.updateButtons();
  }

  updateButtons() {
    const running = this.job && !FINAL.includes(this.state);
    this.startButton.disabled = Boolean(running) || !this.model;
    this.cancelButton.disabled = !running;
  }

  reset() {
    this.points = [];
    this.epochRows = [];
    this.redraws = { filters: 0, maps: 0 };
    this.state = null;
    this.progress.value = 0;
    this.speed.textContent = "";
    this.message.textContent = "";
    this.says.textContent = "";
    this.filtersCaption.textContent = "";
    this.filters.dataset.redraws = "0";
    this.maps.dataset.redraws = "0";
    this.table.replaceChildren();
    this.drawCurves();
  }

  async start() {
    showError(this.error, "");
    const body = {
      model: this.model.model,
      fit: this.model.fit,
      dataset: this.dataset.value,
      recipe: this.recipe.value,
      epochs: this.epochs.value ? Number(this.epochs.value) : null,
      seed: Number(this.seed.value || 0),
      watch_image: Number(this.image.value || 0),
    };
    try {
      const created = await api.startJob(body);
      this.follow(created.id, false);
    } catch (error) {
      showError(this.error, error.message);
    }
  }

  async cancel() {
    if (!this.job) return;
    this.cancelButton.disabled = true;
    this.status.textContent = "Cancelling…";
    try {
      const status = await api.cancelJob(this.job);
      this.showState(status);
    } catch (error) {
      showError(this.error, error.message);
    }
  }

  /** Follow job ``id``'s events (a reconnect replays what happened so far). */
  follow(id, reconnecting) {
    if (this.source) this.source.close();
    this.reset();
    this.job = id;
    this.root.dataset.job = id;
    this.state = "queued";
    this.status.textContent = reconnecting ? "Reconnected to the job that is training." : "Starting…";
    this.updateButtons();
    const source = new EventSource(api.jobEventsUrl(id));
    this.source = source;
    const on = (kind, handler) =>
      source.addEventListener(kind, (event) => {
        if (this.source === source) handler(JSON.parse(event.data));
      });
    on("started", (d) => this.onStarted(d));
    on("watching", (d) => this.onWatching(d));
    on("progress", (d) => this.onProgress(d));
    on("point", (d) => this.onPoint(d));
    on("epoch", (d) => this.onEpoch(d));
    on("snapshot", (d) => this.onSnapshot(d));
    on("state", (d) => this.showState(d));
    source.onerror = () => {
      if (this.source === source && FINAL.includes(this.state)) source.close();
    };
  }

  onStarted(d) {
    this.total = d.epochs;
    this.status.textContent =
      `Training ${d.model} (${d.params.toLocaleString("en-US")} parameters) on ${d.dataset}: ` +
      `${d.train_images.toLocaleString("en-US")} training images, recipe ${d.recipe}, ${d.epochs} epoch(s); the run will be ${d.run}.` +
      (d.input_why ? ` Input ${d.input_why}.` : "");
  }

  async onWatching(d) {
    const image = await loadImage(d.png);
    paint(this.watched, image, pixelScale(image.naturalHeight, image.naturalWidth, 112));
    this.watchedLabel = d.label;
    this.watched.setAttribute("aria-label", `Test image ${d.index}: ${d.label}`);
  }

  onProgress(d) {
    this.progress.value = d.steps ? d.step / d.steps : 0;
    this.speed.textContent =
      `epoch ${d.epoch}/${d.epochs} · step ${d.step.toLocaleString("en-US")}/${d.steps.toLocaleString("en-US")} · ` +
      `${Math.round(d.images_per_second).toLocaleString("en-US")} images/s · about ${duration(d.seconds_left)} left`;
  }

  onPoint(d) {
    this.points.push(d);
    this.drawCurves();
  }

  onEpoch(d) {
    this.epochRows.push(d);
    this.drawCurves();
    const head = el("tr", {}, ...["Epoch", "Train loss", "Train accuracy", "Test accuracy", "Seconds"].map((t) => el("th", { text: t })));
    const rows = this.epochRows.map((r) =>
      el(
        "tr",
        { dataset: { epoch: r.epoch } },
        el("td", { text: String(r.epoch) }),
        el("td", { class: "mono", text: r.train_loss.toFixed(4) }),
        el("td", { class: "mono", text: percent(r.train_accuracy) }),
        el("td", { class: "mono test-accuracy", text: r.test_accuracy === null ? "" : percent(r.test_accuracy) }),
        el("td", { class: "mono", text: r.seconds.toFixed(1) }),
      ),
    );
    this.table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }

  async onSnapshot(d) {
    const p = d.predicted;
    const verdict = this.watchedLabel ? (p.name === this.watchedLabel ? " ✓" : ` (it is ${this.watchedLabel})`) : "";
    this.says.textContent = `After ${d.step} steps the model says ${p.name}, ${percent(p.probability)}${verdict}`;
    if (!d.filters) {
      this.filtersCaption.textContent = "This model has no convolution: there are no filters to watch.";
      return;
    }
    await drawGrid(this.filters, d.filters.grid, 12);
    await drawGrid(this.maps, d.maps.grid, 3);
    this.redraws.filters += 1;
    this.redraws.maps += 1;
    this.filters.dataset.redraws = String(this.redraws.filters);
    this.maps.dataset.redraws = String(this.redraws.maps);
    this.filtersCaption.textContent = `${d.filters.layer}, ${d.filters.grid.count} filters, after ${d.step} steps (epoch ${d.epoch})`;
  }

  drawCurves() {
    const epochEnd = (r) => {
      const last = this.points.filter((p) => p.epoch === r.epoch).pop();
      return last ? last.step : r.epoch;
    };
    // From the epoch where selective backprop starts, the running figures are over the hardest
    // images only: drawn dashed, as their own line, so the drop they show is not read as a loss.
    const all = this.points.filter((p) => !(p.keep < 1));
    const hard = this.points.filter((p) => p.keep < 1);
    const lines = (key, name) => [
      { name, points: all.map((p) => [p.step, p[key]]) },
      ...(hard.length ? [{ name: `${name}, hardest images only`, dashed: true, colour: "#7048e8", points: hard.map((p) => [p.step, p[key]]) }] : []),
    ];
    lineChart(this.loss, lines("loss", "training"), { title: "Loss", xLabel: "step", xMin: 0 });
    lineChart(
      this.accuracy,
      [
        ...lines("accuracy", "training"),
        {
          name: "test (each epoch)",
          colour: "#e8590c",
          dots: true,
          points: this.epochRows.filter((r) => r.test_accuracy !== null).map((r) => [epochEnd(r), r.test_accuracy]),
        },
      ],
      { title: "Accuracy", xLabel: "step", percent: true, xMin: 0 },
    );
    this.loss.dataset.points = String(this.points.length);
    this.accuracy.dataset.points = String(this.points.length);
  }

  showState(status) {
    this.state = status.state;
    this.root.dataset.state = status.state;
    this.status.dataset.state = status.state;
    if (status.state === "done") {
      this.progress.value = 1;
      this.status.textContent = `Done: the run ${status.run} is written, and listed in the run selector and the comparison.`;
      this.onRunWritten(status.run);
    } else if (status.state === "failed") {
      this.status.textContent = "The job failed.";
      showError(this.error, status.error);
    } else if (status.state === "cancelled") {
      this.status.textContent = "Cancelled.";
    }
    if (status.message && status.state !== "done") this.message.textContent = status.message;
    if (FINAL.includes(status.state) && this.source) {
      this.source.close();
      this.source = null;
    }
    this.updateButtons();
  }
}

/** A MapGrid atlas redrawn as a grid of enlarged tiles on ``canvas``. */
async function drawGrid(canvas, grid, scale) {
  const atlas = await loadImage(grid.png);
  const [th, tw] = grid.tile;
  const columns = Math.min(grid.count, grid.columns);
  const gap = 3;
  const width = columns * (tw * scale + gap);
  const rows = Math.ceil(grid.count / columns);
  canvas.width = width;
  canvas.height = rows * (th * scale + gap);
  const c = canvas.getContext("2d");
  c.imageSmoothingEnabled = false;
  c.fillStyle = "#ffffff";
  c.fillRect(0, 0, canvas.width, canvas.height);
  for (let k = 0; k < grid.count; k += 1) {
    const [sx, sy, sw, sh] = tileRect(grid, k);
    const x = (k % columns) * (tw * scale + gap);
    const y = Math.floor(k / columns) * (th * scale + gap);
    c.drawImage(atlas, sx, sy, sw, sh, x, y, tw * scale, th * scale);
  }
  canvas.style.width = `${Math.min(width, 560)}px`;
  canvas.style.height = "auto";
}
