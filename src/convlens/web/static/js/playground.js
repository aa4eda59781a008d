// Part 1: the convolution and pooling playground.
// Choosing an image (built-in, test set, upload, drawing), a filter and the geometry;
// POST /api/convolve draws input, filtered and pooled; hovering asks /api/explain(-pool).
// The image chooser is also the images panel's script (web/images.py: /api/images, /api/samples).

import * as api from "./api.js";
import {
  Stage,
  el,
  latestOnly,
  numberGrid,
  numberText,
  pixelScale,
  showError,
} from "./draw.js";

const $ = (id) => document.getElementById(id);
const ARROW_WIDTH = 56; // .stage-arrow's width in style.css
const STAGE_GAP = 12; // .stages' column gap
const MIN_STAGE = 170; // the narrowest a picture's figure gets, for its captions
const RED = "#ff3b30"; // a filtered pixel and its window on the input
const RED_FILL = "rgba(255,59,48,0.35)";
const BLUE = "#0a84ff"; // a pooled pixel and its window on the filtered image
const BLUE_FILL = "rgba(10,132,255,0.35)";
const BLUE_WINDOW = "rgba(10,132,255,0.15)";

/** The image chooser: four sources, one current image (an ImageInfo). */
export class ImageChooser {
  constructor({ onImage }) {
    this.onImage = onImage;
    this.error = $("image-error");
    this.builtin = $("builtin-select");
    this.sampleClass = $("sample-class");
    this.sampleCount = $("sample-count");
    this.thumbs = $("sample-thumbs");
    this.sampleNote = $("sample-note");
    this.upload = $("upload");
    this.run = null;
    this.samplesShown = false;
    this.sampleRequests = latestOnly();
    this.drawing = new Drawing($("draw-canvas"), {
      onStroke: (blob) => this.use(api.uploadImage(blob, "drawing.png")),
    });

    for (const radio of document.querySelectorAll('#image-source input[name="source"]')) {
      radio.addEventListener("change", () => this.switchTo(radio.value));
    }
    this.builtin.addEventListener("change", () => this.useBuiltin());
    this.sampleClass.addEventListener("change", () => this.showSamples());
    this.sampleCount.addEventListener("change", () => this.showSamples());
    this.upload.addEventListener("change", () => {
      const file = this.upload.files && this.upload.files[0];
      if (file) this.use(api.uploadImage(file, file.name));
    });
    $("draw-clear").addEventListener("click", () => this.drawing.clear());
    $("brush-size").addEventListener("input", (event) => {
      this.drawing.brush = Number(event.target.value);
    });
  }

  /** Fill the built-in list (InfoBody.builtin_images). */
  setBuiltins(builtins) {
    this.builtin.replaceChildren(
      ...builtins.map((b) => el("option", { value: b.name, text: b.title || b.name })),
    );
  }

  /** The classes of the test set sampled without a run (InfoBody.sample_classes). */
  setSampleClasses(names) {
    this.defaultClasses = names;
    if (!this.run) this.setRun(null);
  }

  /** The run whose dataset and classes the test-set samples come from (null: none). */
  setRun(run) {
    this.run = run;
    const classes = run ? run.classes : this.defaultClasses || [];
    const keep = this.sampleClass.value;
    const options = classes.map((name, i) => el("option", { value: String(i), text: `${i}: ${name}` }));
    this.sampleClass.replaceChildren(...options);
    if (keep && options.some((o) => o.value === keep)) this.sampleClass.value = keep;
    this.samplesShown = false;
    if (this.source() === "sample") this.showSamples();
  }

  source() {
    return document.querySelector('#image-source input[name="source"]:checked').value;
  }

  switchTo(source) {
    for (const panel of document.querySelectorAll("#image-source .source-panel")) {
      panel.hidden = panel.dataset.source !== source;
    }
    showError(this.error, "");
    if (source === "builtin") this.useBuiltin();
    if (source === "sample" && !this.samplesShown) this.showSamples();
    if (source === "draw") this.drawing.resend();
  }

  useBuiltin() {
    if (this.builtin.value) this.use(api.builtinImage(this.builtin.value));
  }

  /** Wait for an ImageInfo and make it the current image; errors show under the chooser. */
  async use(promise) {
    try {
      const image = await promise;
      showError(this.error, "");
      this.onImage(image);
    } catch (error) {
      showError(this.error, error.message);
    }
  }

  showSamples() {
    this.samplesShown = true;
    const classChoice = this.sampleClass.value;
    const count = this.sampleCount.value;
    const run = this.run ? this.run.name : null;
    this.sampleRequests(async (isLatest) => {
      this.thumbs.setAttribute("aria-busy", "true");
      try {
        const body = await api.samples(classChoice, count, run);
        if (!isLatest()) return;
        showError(this.error, "");
        this.thumbs.classList.remove("stale");
        const note = `${body.class_name} from the ${body.dataset} test set; choose one.`;
        this.sampleNote.textContent = note;
        this.thumbs.replaceChildren(...body.images.map((image) => this.thumb(image)));
      } catch (error) {
        if (!isLatest()) return;
        // A refused request (a count out of range) leaves the images shown, marked as such.
        this.thumbs.classList.add("stale");
        showError(this.error, error.message);
      } finally {
        this.thumbs.setAttribute("aria-busy", "false");
      }
    });
  }

  thumb(image) {
    const label = `Test image ${image.test_index ?? ""} (${image.label ?? image.name})`;
    const button = el(
      "button",
      {
        type: "button",
        class: "sample-thumb",
        title: label,
        "aria-label": label,
        dataset: { testIndex: image.test_index ?? "", imageId: image.id },
      },
      el("img", { src: image.colour_png || image.png, alt: "", class: "pixelated" }),
    );
    button.addEventListener("click", () => {
      for (const other of this.thumbs.querySelectorAll(".sample-thumb")) {
        other.classList.toggle("selected", other === button);
      }
      this.onImage(image);
    });
    return button;
  }
}

/** The drawing canvas: white strokes on black; each finished stroke is sent as a PNG. */
class Drawing {
  constructor(canvas, { onStroke }) {
    this.canvas = canvas;
    this.onStroke = onStroke;
    this.brush = 22;
    this.drawn = false;
    this.last = null;
    this.context = canvas.getContext("2d");
    this.clear();
    canvas.addEventListener("pointerdown", (event) => this.down(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    canvas.addEventListener("pointerup", (event) => this.up(event));
    canvas.addEventListener("pointercancel", (event) => this.up(event));
  }

  clear() {
    this.context.fillStyle = "#000";
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.drawn = false;
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) / box.width) * this.canvas.width,
      ((event.clientY - box.top) / box.height) * this.canvas.height,
    ];
  }

  down(event) {
    event.preventDefault();
    this.canvas.setPointerCapture?.(event.pointerId);
    this.last = this.point(event);
    this.line(this.last, this.last);
  }

  move(event) {
    if (!this.last) return;
    event.preventDefault();
    const next = this.point(event);
    this.line(this.last, next);
    this.last = next;
  }

  up(event) {
    if (!this.last) return;
    event.preventDefault();
    this.last = null;
    this.drawn = true;
    this.resend();
  }

  line(from, to) {
    const c = this.context;
    c.strokeStyle = "#fff";
    c.lineWidth = this.brush;
    c.lineCap = "round";
    c.lineJoin = "round";
    c.beginPath();
    c.moveTo(from[0], from[1]);
    c.lineTo(to[0], to[1]);
    c.stroke();
  }

  /** Send the drawing as it is now (nothing when nothing was drawn). */
  resend() {
    if (!this.drawn) return;
    this.canvas.toBlob((blob) => {
      if (blob) this.onStroke(blob);
    }, "image/png");
  }
}

/** The preset select and the 3x3 kernel grid. */
export class FilterControls {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.select = $("filter-select");
    this.grid = $("kernel-grid");
    this.error = $("filter-error");
    this.presets = {};
    this.cells = [];
    for (let i = 0; i < 9; i += 1) {
      const input = el("input", {
        type: "number",
        step: "any",
        class: "kernel-cell",
        "aria-label": `Kernel row ${Math.floor(i / 3) + 1}, column ${(i % 3) + 1}`,
        dataset: { index: i },
      });
      input.addEventListener("input", () => this.edited());
      this.cells.push(input);
    }
    this.grid.replaceChildren(...this.cells);
    this.select.addEventListener("change", () => {
      if (this.select.value !== "custom") this.fill(this.presets[this.select.value]);
      this.onChange();
    });
  }

  setPresets(filters) {
    this.presets = filters;
    const names = Object.keys(filters);
    this.select.replaceChildren(
      ...names.map((name) => el("option", { value: name, text: name })),
      el("option", { value: "custom", text: "custom (the grid below)" }),
    );
    const first = names.includes("vertical") ? "vertical" : names[0];
    if (first) {
      this.select.value = first;
      this.fill(filters[first]);
    } else {
      this.select.value = "custom";
      this.fill([
        [0, 0, 0],
        [0, 1, 0],
        [0, 0, 0],
      ]);
    }
  }

  /** Show a kernel (rows of numbers, as the API sent them) in the grid. */
  fill(rows) {
    if (!rows || rows.length !== 3 || rows.some((row) => row.length !== 3)) return;
    rows.flat().forEach((value, i) => {
      if (document.activeElement !== this.cells[i]) this.cells[i].value = numberText(value);
    });
  }

  edited() {
    this.select.value = "custom";
    this.onChange();
  }

  /** The filter part of a request: {filter} for a preset, {kernel: nine numbers} for custom;
   * null (and a sentence naming the cell) when a cell holds no usable number. */
  choice() {
    if (this.select.value !== "custom") return { filter: this.select.value };
    const kernel = this.cells.map((cell) => (cell.value.trim() === "" ? NaN : Number(cell.value)));
    const bad = kernel.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      showError(this.error, cellProblem(this.cells[bad]));
      return null;
    }
    showError(this.error, "");
    return { kernel };
  }
}

/** Why a kernel cell cannot be sent, named by its label ("Kernel row 2, column 3"). */
function cellProblem(cell) {
  const name = cell.getAttribute("aria-label");
  // A number input holds "" both when it is empty and when the browser cannot read what was
  // typed (1e400 overflows): validity.badInput tells them apart.
  if (cell.validity && cell.validity.badInput) {
    return `${name} is not a number a filter can use (too large, like 1e400, or not a number); give one like -2 or 0.5.`;
  }
  if (cell.value.trim() === "") return `${name} is empty; give it a number, like 0.`;
  return `${name} (${cell.value}) is too large for a filter; give a number like -2 or 0.5.`;
}

/** A number field as the API expects it: the number typed, or the text when it is not one. */
function numberField(input) {
  const text = input.value.trim();
  const value = Number(text);
  return text !== "" && Number.isFinite(value) ? value : text;
}

/** The three pictures, the hover explanations and the request behind them. */
export class Playground {
  constructor() {
    this.image = null;
    this.answer = null; // the last ConvolveBody shown
    this.request = null; // the ConvolveRequest behind it
    this.convolveRequests = latestOnly();
    this.explainRequests = latestOnly();
    this.poolRequests = latestOnly();
    this.hovered = null;
    this.hoveredPool = null;
    this.shown = 0; // answers fully drawn: #stages[data-shown]
    this.listeners = [];

    this.stages = {
      input: new Stage($("input-canvas"), $("input-overlay")),
      filtered: new Stage($("filtered-canvas"), $("filtered-overlay")),
      pooled: new Stage($("pooled-canvas"), $("pooled-overlay")),
    };
    this.filters = new FilterControls({ onChange: () => this.convolve("filter-error") });
    this.chooser = new ImageChooser({ onImage: (image) => this.setImage(image) });
    for (const id of ["stride", "padding", "pool", "pool-size", "display"]) {
      $(id).addEventListener("change", () => this.convolve("geometry-error"));
    }
    this.errorShownIn = null; // where the last /api/convolve error went
    this.hoverOn(this.stages.filtered, (pixel) => this.explainPixel(pixel));
    this.hoverOn(this.stages.pooled, (pixel) => this.explainPool(pixel));
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        if (this.answer) this.show(this.request, this.answer);
      }, 150);
    });
  }

  /** Call ``listener(image)`` whenever the current image changes. */
  onImageChange(listener) {
    this.listeners.push(listener);
  }

  setImage(image) {
    this.image = image;
    $("playground").dataset.imageId = image.id;
    for (const listener of this.listeners) listener(image);
    this.convolve("image-error");
  }

  buildRequest() {
    const choice = this.filters.choice();
    if (!choice || !this.image) return null;
    return {
      image: this.image.id,
      ...choice,
      stride: numberField($("stride")),
      padding: $("padding").value,
      pool: $("pool").value,
      pool_size: numberField($("pool-size")),
      display: $("display").value,
    };
  }

  /** Filter the image again; an error is shown in ``errorId``, next to what was changed. */
  convolve(errorId = "convolve-error") {
    const request = this.buildRequest();
    if (!request) return;
    this.convolveRequests(async (isLatest) => {
      $("stages").setAttribute("aria-busy", "true");
      try {
        const body = await api.convolve(request);
        if (!isLatest()) return;
        if (this.errorShownIn) showError($(this.errorShownIn), "");
        this.errorShownIn = null;
        await this.show(request, body);
      } catch (error) {
        if (!isLatest()) return;
        if (this.errorShownIn) showError($(this.errorShownIn), "");
        this.errorShownIn = errorId;
        showError($(errorId), error.message);
      } finally {
        $("stages").setAttribute("aria-busy", "false");
      }
    });
  }

  async show(request, body) {
    this.request = request;
    this.answer = body;
    if ("filter" in request) this.filters.fill(body.kernel);
    const scale = this.fitScale(body);
    await this.stages.input.show(body.input, scale);
    await this.stages.filtered.show(body.filtered, scale);
    this.describe("input", body.input);
    this.describe("filtered", body.filtered);
    const pooledFigure = $("stage-pooled");
    if (body.pooled) {
      await this.stages.pooled.show(body.pooled, scale);
      this.describe("pooled", body.pooled);
      pooledFigure.classList.remove("off");
    } else {
      this.stages.pooled.blank();
      $("pooled-shape").textContent = "";
      $("pooled-formula").textContent = "";
      $("pooled-caption").textContent = "No pooling: choose max or average to shrink the map.";
      pooledFigure.classList.add("off");
    }
    this.sizeFigures();
    this.resetExplanations();
    this.shown += 1;
    $("stages").dataset.shown = String(this.shown); // all three pictures drawn, hovers live
  }

  /**
   * One on-screen size per image pixel for all three pictures, so that they shrink as the
   * arrays do: ~300 px for the input, less when the three would not fit side by side.
   */
  fitScale(body) {
    const [h, w] = body.input.shape;
    const widths = [body.input, body.filtered, body.pooled].filter(Boolean).map((p) => p.shape[1]);
    const stages = $("stages");
    stages.classList.remove("stacked");
    const style = getComputedStyle(stages);
    const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
    const inner = stages.clientWidth - padding;
    const room = inner - (widths.length - 1) * (ARROW_WIDTH + 2 * STAGE_GAP) - 2;
    const needed = (scale) =>
      widths.reduce((sum, width) => sum + Math.max(width * scale, MIN_STAGE), 0);
    const wanted = pixelScale(h, w, 300);
    let scale = wanted;
    for (let i = 0; i < 40 && scale > 0.25 && needed(scale) > room; i += 1) {
      scale = scale > 2 ? scale - 1 : scale * 0.9;
    }
    if (scale < wanted * 0.6) {
      // Too narrow for a row (a phone): one picture under the other, each as wide as fits.
      stages.classList.add("stacked");
      scale = Math.min(wanted, (inner - 2) / w);
    }
    return scale >= 2 ? Math.floor(scale) : Math.max(scale, 0.25);
  }

  /** Make each picture's figure as wide as its canvas (captions wrap under it). */
  sizeFigures() {
    for (const [name, stage] of Object.entries(this.stages)) {
      const width = stage.width ? stage.width * stage.scale : 0;
      $(`stage-${name}`).style.width = `${Math.max(Math.round(width), MIN_STAGE)}px`;
    }
  }

  describe(name, picture) {
    $(`${name}-shape`).textContent = `(${picture.shape.join(", ")})`;
    $(`${name}-formula`).textContent = picture.formula;
    $(`${name}-caption`).textContent = picture.caption;
  }

  resetExplanations() {
    this.hovered = null;
    this.hoveredPool = null;
    this.pixelAnswer = null;
    this.poolAnswer = null;
    for (const stage of Object.values(this.stages)) stage.clear();
    $("pixel-content").hidden = true;
    $("pixel-hint").hidden = false;
    $("pool-content").hidden = true;
    $("pool-hint").hidden = false;
    showError($("explain-error"), "");
    showError($("pool-error"), "");
  }

  hoverOn(stage, handler) {
    const wrap = stage.overlay.parentElement;
    const pick = (event) => {
      const pixel = stage.pixelAt(event);
      if (pixel) handler(pixel);
    };
    wrap.addEventListener("pointermove", pick);
    wrap.addEventListener("pointerdown", pick);
  }

  explainPixel([row, col]) {
    if (!this.answer || !this.request) return;
    if (this.hovered && this.hovered[0] === row && this.hovered[1] === col) return;
    this.hovered = [row, col];
    this.redrawOutlines();
    const { image, filter, kernel, stride, padding } = this.request;
    const request = { image, stride, padding, row, col };
    if (filter !== undefined) request.filter = filter;
    if (kernel !== undefined) request.kernel = kernel;
    const answer = this.answer;
    this.explainRequests(async (isLatest) => {
      try {
        const body = await api.explain(request);
        if (!isLatest() || answer !== this.answer) return;
        showError($("explain-error"), "");
        this.pixelAnswer = body;
        this.showPixel(body);
        this.redrawOutlines();
      } catch (error) {
        if (isLatest()) showError($("explain-error"), error.message);
      }
    });
  }

  explainPool([row, col]) {
    if (!this.answer || !this.request || !this.answer.pooled) return;
    if (this.hoveredPool && this.hoveredPool[0] === row && this.hoveredPool[1] === col) return;
    this.hoveredPool = [row, col];
    this.redrawOutlines();
    const request = { ...this.request, row, col };
    const answer = this.answer;
    this.poolRequests(async (isLatest) => {
      try {
        const body = await api.explainPool(request);
        if (!isLatest() || answer !== this.answer) return;
        showError($("pool-error"), "");
        this.poolAnswer = body;
        this.showPool(body);
        this.redrawOutlines();
      } catch (error) {
        if (isLatest()) showError($("pool-error"), error.message);
      }
    });
  }

  /** Outlines: the last hovered pixel of each picture and the window it came from (per the API). */
  redrawOutlines() {
    for (const stage of Object.values(this.stages)) stage.clear();
    const { input, filtered, pooled } = this.stages;
    if (this.hovered) {
      filtered.outline(this.hovered[0], this.hovered[1], 1, 1, { color: RED, fill: RED_FILL });
      const body = this.pixelAnswer;
      if (body && body.row === this.hovered[0] && body.col === this.hovered[1]) {
        const kh = body.kernel.length;
        const kw = body.kernel[0].length;
        input.outline(body.top, body.left, kh, kw, {
          color: RED,
          fill: "rgba(255,59,48,0.18)",
          dashed: body.in_padding,
        });
      }
    }
    if (this.hoveredPool) {
      const [row, col] = this.hoveredPool;
      pooled.outline(row, col, 1, 1, { color: BLUE, fill: BLUE_FILL });
      const body = this.poolAnswer;
      if (body && body.row === this.hoveredPool[0] && body.col === this.hoveredPool[1]) {
        const ph = body.values.length;
        const pw = body.values[0] ? body.values[0].length : 0;
        filtered.outline(body.top, body.left, ph, pw, { color: BLUE, fill: BLUE_WINDOW });
        if (body.chosen) {
          filtered.outline(body.top + body.chosen[0], body.left + body.chosen[1], 1, 1, {
            color: "#ffd60a",
            fill: "rgba(255,214,10,0.55)",
            ring: false,
          });
        }
      }
    }
  }

  showPixel(body) {
    $("pixel-hint").hidden = true;
    $("pixel-content").hidden = false;
    const kh = body.kernel.length;
    const kw = body.kernel[0].length;
    let where =
      `Output pixel (row ${body.row}, col ${body.col}) comes from input rows ` +
      `${body.top}..${body.top + kh - 1}, cols ${body.left}..${body.left + kw - 1}.`;
    if (body.in_padding) where += " Cells outside the image are zero padding.";
    $("pixel-where").textContent = where;
    $("explain-grids").replaceChildren(
      numberGrid(body.neighbourhood, { caption: "Neighbourhood", testid: "neighbourhood" }),
      el("span", { class: "op", text: "×", "aria-hidden": "true" }),
      numberGrid(body.kernel, { caption: "Filter", testid: "kernel" }),
      el("span", { class: "op", text: "→", "aria-hidden": "true" }),
      numberGrid(body.products, { caption: "Products", testid: "products" }),
    );
    $("arithmetic").textContent = body.equation;
    $("arithmetic-sum").textContent = numberText(body.sum);
    $("arithmetic-shown").textContent = numberText(body.shown);
  }

  showPool(body) {
    $("pool-hint").hidden = true;
    $("pool-content").hidden = false;
    const ph = body.values.length;
    const pw = body.values[0] ? body.values[0].length : 0;
    const verb = body.mode === "max" ? "keeps the largest of the" : "averages the";
    const where =
      `Pooled pixel (row ${body.row}, col ${body.col}) ${verb} cells of filtered rows ` +
      `${body.top}..${body.top + ph - 1}, cols ${body.left}..${body.left + pw - 1}.`;
    $("pool-where").textContent = where;
    $("pool-grids").replaceChildren(
      numberGrid(body.values, {
        caption: "Window of the filtered image",
        mark: body.chosen,
        testid: "pool-window",
      }),
    );
    $("pool-arithmetic").textContent = body.equation;
    $("pool-value").textContent = numberText(body.value);
  }
}

