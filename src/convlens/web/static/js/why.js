// Why this answer, and what a filter looks for (POST /api/attribution, POST /api/portrait).
//
// On the journey's "What the model sees": a switch (#why-toggle) lays an attribution map over
// the input (#why-overlay, a canvas on top of #journey-input), with the method (#why-method)
// and the class explained (#why-class: the predicted one, or any class) selectable; #why-title
// says what red means, #why-note how it was computed; #why-overlay's data-ms is the time from
// asking to drawing, data-target the class index drawn.
// A click on a feature-map tile of the journey (the "maptile" event journey.js sends) opens
// that filter's portrait in its layer (#portrait): the test images exciting it most, each
// with the patch its strongest value sees outlined (canvas.portrait-patch), and an input
// synthesised to excite it (canvas.portrait-synthesised).

import * as api from "./api.js";
import { el, latestOnly, loadImage, paint, pixelScale, showError } from "./draw.js";

const $ = (id) => document.getElementById(id);
const PREDICTED = "predicted";

export class Why {
  constructor() {
    this.context = null; // {run, image, invert, classes}
    this.requests = latestOnly();
    this.portraits = latestOnly();
    this.buildControls();
    $("journey").addEventListener("maptile", (event) => this.openPortrait(event));
  }

  buildControls() {
    const input = $("journey-input");
    this.overlay = el("canvas", {
      id: "why-overlay",
      class: "pixelated",
      role: "img",
      "aria-label": "Attribution map over the model's input",
    });
    Object.assign(this.overlay.style, { position: "absolute", left: "0", top: "0" });
    this.overlay.hidden = true;
    const holder = el("span", { class: "why-holder" });
    Object.assign(holder.style, { position: "relative", display: "inline-block", lineHeight: 0 });
    input.replaceWith(holder);
    holder.append(input, this.overlay);

    this.toggle = el("input", { type: "checkbox", id: "why-toggle" });
    this.method = el("select", { id: "why-method", "aria-label": "Attribution method" });
    // The methods come from the server's table (GET /api/attribution/methods), its default
    // chosen until the reader picks one; a new run asks again (its default may differ).
    this.methodChosen = false;
    this.methodsRun = null;
    this.methodsReady = this.loadMethods(null);
    this.target = el("select", { id: "why-class", "aria-label": "Class to explain" });
    this.title = el("p", { id: "why-title", class: "caption" });
    this.note = el("p", { id: "why-note", class: "caption" });
    this.error = el("p", { id: "why-error", class: "error", role: "alert", hidden: true });
    const controls = el(
      "div",
      { class: "why-controls", id: "why-controls" },
      el("label", { class: "why-switch" }, this.toggle, " Why? Show the pixels behind the answer"),
      el("div", { class: "field" }, el("label", { for: "why-method", text: "Method" }), this.method),
      el("div", { class: "field" }, el("label", { for: "why-class", text: "Explain" }), this.target),
      this.title,
      this.note,
      this.error,
    );
    Object.assign(controls.style, { display: "flex", flexDirection: "column", gap: "6px" });
    controls.style.maxWidth = "300px";
    $("journey-start").append(controls);
    this.method.addEventListener("change", () => {
      this.methodChosen = true;
    });
    for (const control of [this.toggle, this.method, this.target]) {
      control.addEventListener("change", () => this.update());
    }
  }

  /** Fill #why-method from the server's table; select its default unless the reader chose. */
  async loadMethods(run) {
    this.methodsRun = run;
    const { methods, defaultName } = methodMenu(await api.attributionMethods(run));
    if (this.methodsRun !== run) return;
    const kept = this.method.value;
    this.method.replaceChildren(
      ...methods.map(({ name, title }) => el("option", { value: name, text: title })),
    );
    const keep = this.methodChosen && methods.some((m) => m.name === kept);
    this.method.value = keep ? kept : defaultName;
    this.method.dataset.default = defaultName;
  }

  /** After each journey: the image, run and classes the overlay is for. */
  setJourney(body, image) {
    if (!body || !image) {
      this.context = null;
      this.overlay.hidden = true;
      return;
    }
    const previous = this.context;
    this.context = {
      run: body.run,
      image: image.id,
      invert: $("invert").value,
      scale: pixelScale(body.input.shape[0], body.input.shape[1], 168),
    };
    if (!this.methodChosen && body.run !== this.methodsRun) {
      this.methodsReady = this.loadMethods(body.run);
    }
    if (!previous || previous.run !== body.run || this.target.options.length === 0) {
      const keep = this.target.value;
      this.target.replaceChildren(el("option", { value: PREDICTED, text: "the predicted class" }));
      for (const p of body.probabilities) {
        this.target.append(el("option", { value: String(p.index), text: `${p.index} ${p.name}` }));
      }
      if ([...this.target.options].some((o) => o.value === keep)) this.target.value = keep;
    }
    this.update();
  }

  async update() {
    await this.methodsReady;
    if (!this.toggle.checked || !this.context) {
      this.overlay.hidden = true;
      this.title.textContent = "";
      this.note.textContent = "";
      showError(this.error, "");
      return;
    }
    const request = {
      run: this.context.run,
      image: this.context.image,
      invert: this.context.invert,
      method: this.method.value,
      target: this.target.value === PREDICTED ? null : Number(this.target.value),
    };
    const scale = this.context.scale;
    this.requests(async (isLatest) => {
      const started = performance.now();
      try {
        const body = await api.attribution(request);
        const picture = await loadImage(body.overlay);
        if (!isLatest()) return;
        paint(this.overlay, picture, scale);
        this.overlay.hidden = false;
        this.overlay.dataset.ms = String(performance.now() - started);
        this.overlay.dataset.serverMs = String(body.milliseconds);
        this.overlay.dataset.target = String(body.target_index);
        this.overlay.dataset.method = body.method;
        this.title.textContent = body.title;
        const delta = body.delta === null ? "" : `; completeness error ${body.delta.toFixed(4)}`;
        this.note.textContent = `${body.note}; score: the logit of ${body.target_name}${delta}.`;
        showError(this.error, "");
      } catch (error) {
        if (!isLatest()) return;
        this.overlay.hidden = true;
        showError(this.error, error.message);
      }
    });
  }

  /** Open the portrait of the clicked tile's filter inside its layer's section. */
  openPortrait(event) {
    const section = event.target.closest(".journey-layer");
    const run = $("journey").dataset.run;
    if (!section || !run) return;
    const layer = section.dataset.layer;
    const filter = event.detail.index;
    let panel = $("portrait");
    if (!panel || panel.closest(".journey-layer") !== section) {
      if (panel) panel.remove();
      panel = el("div", { id: "portrait", class: "portrait", "aria-live": "polite" });
      section.querySelector(".layer-body").append(panel);
    }
    panel.dataset.layer = layer;
    panel.dataset.filter = String(filter);
    panel.dataset.loaded = "false";
    panel.replaceChildren(
      el("div", { class: "block-label", text: `Filter ${filter} of ${layer}: working…` }),
    );
    this.portraits(async (isLatest) => {
      try {
        const body = await api.portrait({ run, layer, filter, count: 6 });
        if (!isLatest()) return;
        await drawPortrait(panel, body);
      } catch (error) {
        if (!isLatest()) return;
        panel.replaceChildren(el("p", { class: "error", role: "alert", text: error.message }));
      }
    });
  }
}

/**
 * The methods and the default of GET /api/attribution/methods's answer: a list whose default
 * method carries default: true, or {methods, default}; without a default, the first method.
 */
export function methodMenu(answer) {
  const methods = Array.isArray(answer) ? answer : answer.methods;
  const marked = methods.find((m) => m.default === true);
  const named = Array.isArray(answer) ? null : answer.default;
  const known = (name) => methods.some((m) => m.name === name);
  const defaultName = known(named) ? named : marked ? marked.name : methods[0].name;
  return { methods, defaultName };
}

/** The portrait: synthesised input first, then the top test images with their patches. */
async function drawPortrait(panel, body) {
  const synthesised = el("canvas", { class: "pixelated portrait-synthesised", role: "img" });
  paint(synthesised, await loadImage(body.synthesised), 3);
  const figures = [
    el(
      "figure",
      { class: "portrait-item" },
      synthesised,
      el("figcaption", { class: "caption", text: "synthesised to excite it" }),
    ),
  ];
  for (const patch of body.patches) {
    const canvas = el("canvas", {
      class: "pixelated portrait-patch",
      role: "img",
      dataset: { testIndex: patch.test_index, window: patch.window.join(",") },
      "aria-label": `test image ${patch.test_index}, ${patch.class_name}`,
    });
    const picture = await loadImage(patch.png);
    drawWithBox(canvas, picture, body.never_fires ? null : patch.window, 3);
    figures.push(
      el(
        "figure",
        { class: "portrait-item" },
        canvas,
        el("figcaption", {
          class: "caption",
          text: `test ${patch.test_index} ${patch.class_name}: ${patch.value.toPrecision(3)}`,
        }),
      ),
    );
  }
  const [h, w] = body.field;
  const lead = body.never_fires
    ? `No test image makes filter ${body.filter} of ${body.layer} fire.`
    : `The ${body.patches.length} test images (of ${body.test_images.toLocaleString("en-US")}) ` +
      `exciting filter ${body.filter} of ${body.layer} most; the box is the ${h}x${w} ` +
      "input pixels its strongest value sees.";
  for (const figure of figures) figure.style.margin = "0";
  const row = el("div", { class: "portrait-row" }, ...figures);
  Object.assign(row.style, { display: "flex", flexWrap: "wrap", gap: "10px" });
  const close = el("button", { type: "button", class: "portrait-close", text: "Close" });
  close.addEventListener("click", () => panel.remove());
  panel.replaceChildren(
    el("div", { class: "block-label", text: `Portrait of filter ${body.filter} of ${body.layer}` }),
    el("p", { class: "caption", text: `${lead} Receptive field: ${body.field_why}.` }),
    row,
    close,
  );
  panel.dataset.loaded = "true";
}

/** The image scaled up, with the patch [top, left, bottom, right) outlined in cyan. */
function drawWithBox(canvas, picture, window, scale) {
  const width = picture.naturalWidth * scale;
  const height = picture.naturalHeight * scale;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(picture, 0, 0, width, height);
  if (!window) return;
  const [top, left, bottom, right] = window;
  context.strokeStyle = "#00e5ff";
  context.lineWidth = 2;
  const [x, y] = [left * scale + 1, top * scale + 1];
  context.strokeRect(x, y, (right - left) * scale - 2, (bottom - top) * scale - 2);
}
