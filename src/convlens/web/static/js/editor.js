// Part 4: the model editor. It holds a model JSON object (as model.json holds it), lets the
// reader add, remove, reorder layers and edit their arguments, and after every edit asks the
// server for the summary (POST /api/models/summary: the same spec code as `convlens summary`).
// A model that cannot be built shows the server's sentence beside the layer at fault.
// The summary is of the model as it will train on the dataset chosen in part 5 (setDataset): a
// preset or an exercise made from one is fitted to it ("fit", as `convlens train --model
// PRESET` fits a preset: a folder's image size and colour, one output per class); a run's
// model or an input typed by hand is taken as written. #editor-fit switches fitting;
// #editor-fitted says what the dataset gives and why.
//
// Test hooks: #editor-start (select: "preset:NAME" / "run:NAME"), #editor-load,
// button[data-exercise] (filters-16, filters-32, filters-64, no-second-conv, third-conv,
// dense-baseline), #editor-input (three inputs data-axis 0..2), #editor-layers with
// li.editor-layer[data-index][data-type], inputs/selects [data-arg], .layer-shape,
// .layer-params[data-params], .layer-why, .layer-error (role=alert), buttons .move-up,
// .move-down, .remove-layer; #editor-add-type, #editor-add; #editor-total[data-params];
// #editor-error; #editor-download; #editor-fit (checkbox); #editor-fitted (the input's why);
// #editor[data-state] = "ok" | "error" | "busy"; #editor[data-dataset] = the dataset shown for.

import * as api from "./api.js";
import { el, showError } from "./draw.js";

const $ = (id) => document.getElementById(id);

// Each layer type's controls and a new layer's arguments come from the server's layer
// registry (GET /api/models/layer-types): {type: {fields: [{name, kind, choices?}], new}}.
let LAYER_TYPES = {};

/** A deep copy of a model JSON object without layer names (the summary names them). */
function unnamed(model) {
  const copy = JSON.parse(JSON.stringify(model));
  for (const layer of copy.layers) delete layer.name;
  delete copy.class_names;
  return copy;
}

/** The lesson's exercises: each a function from the lesson's CNN (and the presets) to a model. */
const EXERCISES = [
  ["filters-16", "16 filters", (cnn) => withFilters(cnn, 16)],
  ["filters-32", "32 filters", (cnn) => withFilters(cnn, 32)],
  ["filters-64", "64 filters", (cnn) => withFilters(cnn, 64)],
  ["no-second-conv", "Without the 2nd conv + pooling", withoutSecondConv],
  ["third-conv", "With a 3rd conv", withThirdConv],
  ["dense-baseline", "Dense baseline", (_cnn, presets) => unnamed(presets["seed-dnn"].model)],
];

function withFilters(cnn, filters) {
  const model = unnamed(cnn);
  model.name = `seed-cnn-${filters}`;
  for (const layer of model.layers) if (layer.type === "Conv2D") layer.filters = filters;
  return model;
}

function withoutSecondConv(cnn) {
  const model = unnamed(cnn);
  model.name = "seed-cnn-one-conv";
  const convs = model.layers.map((l, i) => [l, i]).filter(([l]) => l.type === "Conv2D");
  if (convs.length < 2) return model;
  const at = convs[1][1];
  const next = model.layers[at + 1];
  const count = next && next.type.endsWith("Pooling2D") ? 2 : 1;
  model.layers.splice(at, count);
  return model;
}

function withThirdConv(cnn) {
  const model = unnamed(cnn);
  model.name = "seed-cnn-three-convs";
  const flatten = model.layers.findIndex((l) => l.type === "Flatten");
  model.layers.splice(flatten, 0, JSON.parse(JSON.stringify(LAYER_TYPES.Conv2D.new)));
  return model;
}

export class Editor {
  constructor({ onChange = () => {} } = {}) {
    // ({model, fit} as a job trains it, or null when broken; summary) after each summary
    this.onChange = onChange;
    this.model = null;
    this.fit = false; // a preset or made from one: fitted to the dataset
    this.base = null; // while fitting: the input shape of the preset it came from
    this.dataset = null; // the dataset the summary is for (part 5's choice)
    this.summary = null;
    this.presets = {};
    this.runs = [];
    this.generation = 0;
    this.timer = null;
    this.root = $("editor");
    this.build();
  }

  build() {
    this.start = el("select", { id: "editor-start", "aria-label": "Start from" });
    const load = el("button", { type: "button", id: "editor-load", class: "button", text: "Load" });
    load.addEventListener("click", () => this.loadChoice());
    const exercises = el("div", { class: "exercises", role: "group", "aria-label": "The lesson's exercises" });
    for (const [key, title, make] of EXERCISES) {
      const button = el("button", { type: "button", class: "button chip", dataset: { exercise: key }, text: title });
      button.addEventListener("click", () => {
        if (!this.presets["seed-cnn"]) return;
        this.setModel(make(this.presets["seed-cnn"].model, this.presets), true);
      });
      exercises.append(button);
    }
    this.inputs = [0, 1, 2].map((axis) =>
      el("input", {
        type: "number",
        min: "1",
        step: "1",
        class: "axis",
        dataset: { axis },
        "aria-label": ["Input height", "Input width", "Input channels"][axis],
      }),
    );
    this.inputs.forEach((input) =>
      input.addEventListener("input", () => {
        // An input typed by hand is the model's own: taken as written, no longer fitted.
        this.setFit(false);
        this.model.input_shape = this.inputs.map((box) => integerOr(box.value));
        this.changed();
      }),
    );
    this.fitBox = el("input", { type: "checkbox", id: "editor-fit" });
    this.fitBox.addEventListener("change", () => {
      this.setFit(this.fitBox.checked);
      this.changed(0);
    });
    this.fitted = el("p", { id: "editor-fitted", class: "editor-fitted note", "aria-live": "polite" });
    this.nameInput = el("input", { id: "editor-name", type: "text", "aria-label": "Model name", maxlength: "60" });
    this.nameInput.addEventListener("input", () => {
      this.model.name = this.nameInput.value || "sequential";
      this.changed();
    });
    this.list = el("ol", { id: "editor-layers", class: "editor-layers" });
    this.addType = el("select", { id: "editor-add-type", "aria-label": "Layer type to add" });
    const add = el("button", { type: "button", id: "editor-add", class: "button", text: "Add layer" });
    add.addEventListener("click", () => this.addLayer(this.addType.value));
    this.total = el("p", { id: "editor-total", class: "editor-total" });
    this.error = el("p", { id: "editor-error", class: "error", role: "alert", hidden: true });
    const download = el("button", { type: "button", id: "editor-download", class: "button", text: "Download model JSON" });
    download.addEventListener("click", () => this.download());
    this.root.append(
      el(
        "div",
        { class: "toolbar card editor-toolbar" },
        el("div", { class: "field" }, el("label", { for: "editor-start", text: "Start from" }), this.start),
        load,
        el("div", { class: "field grow" }, el("span", { class: "label", text: "The lesson's exercises" }), exercises),
      ),
      el(
        "div",
        { class: "card editor-card" },
        el(
          "div",
          { class: "editor-head" },
          el("div", { class: "field" }, el("label", { for: "editor-name", text: "Name" }), this.nameInput),
          el("div", { class: "field" }, el("span", { class: "label", text: "Input (height, width, channels)" }), el("div", { id: "editor-input", class: "axes" }, ...this.inputs)),
          el(
            "label",
            { class: "editor-fit-label", for: "editor-fit", title: "As `convlens train` fits a preset: a folder's image size and colour, and one output per class" },
            this.fitBox,
            " Fit the input and the last layer to the dataset",
          ),
          el("div", { class: "editor-add" }, this.addType, add),
        ),
        this.fitted,
        this.error,
        this.list,
        el("div", { class: "editor-foot" }, this.total, download),
      ),
    );
  }

  /** The presets (GET /api/models/presets), the runs that may be started from, and the
   * layer types (GET /api/models/layer-types) the editor can add. */
  async setSources(presets, runs, layerTypes) {
    LAYER_TYPES = layerTypes;
    this.addType.replaceChildren(
      ...Object.entries(layerTypes).map(([type, { description }]) => el("option", { value: type, text: type, title: description })),
    );
    this.presets = presets;
    this.setRuns(runs);
    if (!this.model && presets["seed-cnn"]) this.setModel(unnamed(presets["seed-cnn"].model), true);
  }

  /** The dataset (one of GET /api/jobs's) the shapes are shown for: part 5's choice. */
  setDataset(dataset) {
    if (dataset === this.dataset) return;
    this.dataset = dataset;
    if (this.model) this.changed(0);
  }

  /** Fit the model to the dataset (a preset's input is kept as the base) or take it as shown. */
  setFit(fit) {
    if (fit && !this.fit) this.base = [...this.model.input_shape];
    if (!fit && this.fit) this.model.input_shape = this.inputs.map((box) => integerOr(box.value));
    this.fit = fit;
    this.fitBox.checked = fit;
  }

  setRuns(runs) {
    this.runs = runs;
    const chosen = this.start.value;
    this.start.replaceChildren();
    const group = (label) => el("optgroup", { label });
    const presets = group("Presets");
    for (const [name, { description }] of Object.entries(this.presets)) {
      presets.append(el("option", { value: `preset:${name}`, text: name, title: description }));
    }
    this.start.append(presets);
    if (runs.length) {
      const fromRuns = group("A run's model");
      for (const run of runs) fromRuns.append(el("option", { value: `run:${run.name}`, text: run.name }));
      this.start.append(fromRuns);
    }
    if (chosen && [...this.start.options].some((o) => o.value === chosen)) this.start.value = chosen;
  }

  async loadChoice() {
    const [kind, name] = this.start.value.split(/:(.*)/s);
    if (kind === "preset") {
      this.setModel(unnamed(this.presets[name].model), true);
      return;
    }
    try {
      this.setModel(unnamed(await api.runModel(name)), false); // a run's model: as it was
    } catch (error) {
      showError(this.error, error.message);
    }
  }

  /** Show ``model``; ``fit``: it is a preset or made from one, fitted to the dataset. */
  setModel(model, fit) {
    this.model = model;
    this.fit = false;
    this.setFit(fit);
    this.nameInput.value = model.name || "sequential";
    model.input_shape.forEach((n, axis) => (this.inputs[axis].value = n));
    this.renderLayers();
    this.changed(0);
  }

  addLayer(type) {
    // New layers go before the classifier (a model ends in Dense); move them with the arrows.
    const at = Math.max(0, this.model.layers.length - 1);
    this.model.layers.splice(at, 0, JSON.parse(JSON.stringify(LAYER_TYPES[type].new)));
    this.renderLayers();
    this.changed(0);
  }

  move(index, by) {
    const layers = this.model.layers;
    const to = index + by;
    if (to < 0 || to >= layers.length) return;
    [layers[index], layers[to]] = [layers[to], layers[index]];
    this.renderLayers();
    this.changed(0);
  }

  remove(index) {
    this.model.layers.splice(index, 1);
    this.renderLayers();
    this.changed(0);
  }

  renderLayers() {
    const items = this.model.layers.map((layer, index) => this.layerItem(layer, index));
    this.list.replaceChildren(...items);
  }

  layerItem(layer, index) {
    const fields = (LAYER_TYPES[layer.type]?.fields || []).map((field) => this.argumentField(layer, field));
    const button = (cls, text, label, action) => {
      const b = el("button", { type: "button", class: `icon-button ${cls}`, text, title: label, "aria-label": `${label} (layer ${index + 1})` });
      b.addEventListener("click", action);
      return b;
    };
    return el(
      "li",
      { class: "editor-layer", dataset: { index, type: layer.type } },
      el(
        "div",
        { class: "editor-layer-row" },
        el("span", { class: "layer-index", text: String(index + 1) }),
        el("span", { class: "layer-type-name", text: layer.type }),
        el("div", { class: "layer-args" }, ...fields),
        el("span", { class: "layer-shape mono" }),
        el("span", { class: "layer-params" }),
        el(
          "span",
          { class: "layer-buttons" },
          button("move-up", "↑", "Move up", () => this.move(index, -1)),
          button("move-down", "↓", "Move down", () => this.move(index, 1)),
          button("remove-layer", "✕", "Remove", () => this.remove(index)),
        ),
      ),
      el("p", { class: "layer-why" }),
      el("p", { class: "layer-error error", role: "alert", hidden: true }),
    );
  }

  argumentField(layer, { name, kind, choices }) {
    const id = `arg-${Math.random().toString(36).slice(2, 9)}`;
    let input;
    if (choices) {
      input = el("select", { id, dataset: { arg: name } }, ...choices.map((v) => el("option", { value: v, text: v })));
      input.value = layer[name] ?? { activation: "linear", padding: "valid" }[kind] ?? choices[0];
    } else if (kind === "bool") {
      input = el("input", { id, type: "checkbox", dataset: { arg: name } });
      input.checked = Boolean(layer[name]);
    } else {
      input = el("input", { id, type: "text", inputmode: "numeric", class: "arg-input", dataset: { arg: name } });
      input.value = showValue(layer[name], kind);
      if (kind === "pair?") input.placeholder = "pool";
      if (kind === "float?") input.placeholder = "none";
    }
    const event = input.tagName === "SELECT" || kind === "bool" ? "change" : "input";
    input.addEventListener(event, () => {
      const value = kind === "bool" ? input.checked : readValue(input.value, kind, Boolean(choices));
      if (value === undefined) delete layer[name];
      else layer[name] = value;
      this.changed();
    });
    return el("label", { class: "arg", for: id }, el("span", { text: name.replace("_", " ") }), input);
  }

  /** Ask for the summary a moment after the last edit (at once when ``delay`` is 0). */
  changed(delay = 200) {
    clearTimeout(this.timer);
    this.root.dataset.state = "busy";
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  /** The model as a job is asked to train it: a fitted one with its preset's input. */
  request() {
    const model = JSON.parse(JSON.stringify(this.model));
    if (this.fit && this.base) model.input_shape = [...this.base];
    return { model, fit: this.fit };
  }

  async refresh() {
    const generation = ++this.generation;
    const asked = this.request();
    const dataset = this.dataset;
    try {
      const summary = await api.modelSummary(asked.model, dataset, asked.fit);
      if (generation !== this.generation) return;
      this.showSummary(summary);
      this.summary = summary;
      this.root.dataset.state = "ok";
      this.root.dataset.dataset = dataset || "";
      this.onChange(asked, summary);
    } catch (error) {
      if (generation !== this.generation) return;
      this.showProblem(error);
      this.summary = null;
      this.root.dataset.state = "error";
      this.root.dataset.dataset = dataset || "";
      this.onChange(null, null);
    }
  }

  /** What fitting made of the model: the input shown, the last layer's units, and why. */
  showFitted(summary) {
    if (this.fit) {
      summary.input_shape.forEach((n, axis) => {
        if (document.activeElement !== this.inputs[axis]) this.inputs[axis].value = n;
      });
      const last = this.model.layers[this.model.layers.length - 1];
      const fittedLast = summary.model.layers[summary.model.layers.length - 1];
      if (last && fittedLast && last.type === "Dense" && last.units !== fittedLast.units) {
        last.units = fittedLast.units;
        const box = this.list.lastElementChild?.querySelector("[data-arg='units']");
        if (box && document.activeElement !== box) box.value = String(fittedLast.units);
      }
    }
    if (!summary.dataset) {
      this.fitted.textContent = "";
      return;
    }
    const shape = summary.input_shape.join("x");
    const classes = summary.classes || [];
    const named = classes.length <= 12 ? ` (${classes.join(", ")})` : "";
    const [, why] = (summary.input_why || "").split(/: (.*)/s);
    const reason = why ? ` (${why})` : "";
    let text = `Shown for ${summary.dataset}, the dataset chosen to train on below: input ${shape}${reason}, ${classes.length} classes${named}.`;
    const fitted = (summary.fitted_shape || []).join("x");
    if (!this.fit && fitted && fitted !== shape) {
      text += ` Your images are read at this model's ${shape}; fitted, it would read them at ${fitted}: tick "Fit the input and the last layer to the dataset".`;
    }
    this.fitted.textContent = text;
  }

  showSummary(summary) {
    showError(this.error, "");
    this.showFitted(summary);
    summary.layers.forEach((row, index) => {
      const item = this.list.children[index];
      if (!item) return;
      item.querySelector(".layer-shape").textContent = row.keras_shape;
      const params = item.querySelector(".layer-params");
      params.dataset.params = row.params;
      params.textContent = `${row.params.toLocaleString("en-US")} params`;
      item.querySelector(".layer-why").replaceChildren(
        el("span", { text: `Shape: ${row.shape_why}. ` }),
        el("span", { text: `Params: ${row.params_why}.` }),
      );
      showError(item.querySelector(".layer-error"), "");
      item.classList.remove("broken");
    });
    this.total.dataset.params = summary.total_params;
    this.total.textContent = `Total: ${summary.total_params.toLocaleString("en-US")} parameters (${summary.trainable_params.toLocaleString("en-US")} trainable)`;
  }

  showProblem(error) {
    this.fitted.textContent = "";
    for (const item of this.list.children) {
      item.querySelector(".layer-shape").textContent = "";
      const params = item.querySelector(".layer-params");
      params.textContent = "";
      delete params.dataset.params;
      item.querySelector(".layer-why").replaceChildren();
      showError(item.querySelector(".layer-error"), "");
      item.classList.remove("broken");
    }
    const item = error.layer !== null && error.layer !== undefined ? this.list.children[error.layer] : null;
    if (item) {
      showError(item.querySelector(".layer-error"), error.message);
      item.classList.add("broken");
      showError(this.error, "");
    } else {
      showError(this.error, error.message);
    }
    delete this.total.dataset.params;
    this.total.textContent = "The model cannot be built yet: fix the layer in red.";
  }

  download() {
    const model = this.summary ? this.summary.model : this.model;
    const blob = new Blob([`${JSON.stringify(model, null, 2)}\n`], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `${model.name || "model"}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }
}

function showValue(value, kind) {
  if (value === undefined || value === null) return "";
  if (kind === "pairs" && Array.isArray(value)) {
    const [[top, bottom], [left, right]] = value;
    if (top === bottom && left === right) return top === left ? String(top) : `${top},${left}`;
    return `${top},${bottom};${left},${right}`;
  }
  if (Array.isArray(value)) return value[0] === value[1] ? String(value[0]) : value.join("x");
  return String(value);
}

function integerOr(text) {
  const n = Number(text);
  return text.trim() !== "" && Number.isInteger(n) ? n : text;
}

/** The input's text as JSON the server checks: numbers when they read as numbers, else the text. */
function readValue(text, kind, isChoice) {
  const trimmed = text.trim();
  if (isChoice) return text;
  if ((kind === "pair?" || kind === "float?") && trimmed === "") return undefined;
  if (kind === "pairs") {
    // "1" (all sides), "1,2" (rows, columns) or "1,2;0,3" ((top, bottom); (left, right))
    const rows = trimmed.split(/\s*;\s*/).map((part) => part.split(/\s*,\s*/).map(integerOr));
    if (!rows.flat().every((n) => typeof n === "number")) return trimmed;
    if (rows.length === 1 && rows[0].length === 1) return rows[0][0];
    if (rows.length === 1 && rows[0].length === 2) return rows[0];
    return rows;
  }
  if (kind === "pair" || kind === "pair?") {
    const parts = trimmed.split(/\s*[x×,]\s*/);
    if (parts.length === 1) {
      const n = integerOr(parts[0]);
      return typeof n === "number" ? [n, n] : trimmed;
    }
    const pair = parts.map(integerOr);
    return pair.every((n) => typeof n === "number") ? pair : trimmed;
  }
  if (kind === "float" || kind === "float?") {
    const n = Number(trimmed);
    return trimmed !== "" && Number.isFinite(n) ? n : trimmed;
  }
  return integerOr(trimmed);
}
