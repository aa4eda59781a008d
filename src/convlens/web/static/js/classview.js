// Part 3: several test images of one class, one filter, every conv and pooling layer
// (POST /api/class-filter). Rows are images, columns layers, as in the lesson's notebook.

import * as api from "./api.js";
import { el, latestOnly, percent, showError } from "./draw.js";

const $ = (id) => document.getElementById(id);

/** A number field as the API expects it: the number typed, or the text when it is not one. */
function numberField(input) {
  const text = input.value.trim();
  const value = Number(text);
  return text !== "" && Number.isFinite(value) ? value : text;
}

export class ClassView {
  constructor() {
    this.run = null;
    this.requests = latestOnly();
    this.select = $("class-select");
    this.table = $("class-grid");
    this.error = $("class-error");
    this.chosen = false; // true once the reader picks a class here: then it stays theirs
    this.select.addEventListener("change", () => {
      this.chosen = true;
    });
    for (const id of ["class-select", "filter-index", "class-count"]) {
      $(id).addEventListener("change", () => this.update());
    }
  }

  setRun(run) {
    this.run = run;
    const keep = this.select.value;
    this.select.replaceChildren(
      ...run.classes.map((name, index) => el("option", { value: name, text: `${index}: ${name}` })),
    );
    if (keep && run.classes.includes(keep)) this.select.value = keep;
    $("class-run").textContent = `Run ${run.name} (chosen above).`;
    this.update();
  }

  /** Show the class of the playground's test image, until the reader picks a class here. */
  follow(className) {
    if (this.chosen || !this.run || !this.run.classes.includes(className)) return;
    if (this.select.value === className) return;
    this.select.value = className;
    this.update();
  }

  update() {
    if (!this.run || !this.select.value) return;
    const request = {
      run: this.run.name,
      class_choice: this.select.value,
      filter: numberField($("filter-index")),
      count: numberField($("class-count")),
    };
    this.requests(async (isLatest) => {
      $("class-busy").hidden = false;
      try {
        const body = await api.classFilter(request);
        if (!isLatest()) return;
        showError(this.error, "");
        this.table.classList.remove("stale");
        this.render(body);
      } catch (error) {
        if (!isLatest()) return;
        // A refused request leaves the grid shown (marked stale) beside the sentence.
        showError(this.error, error.message);
        this.table.classList.add("stale");
      } finally {
        if (isLatest()) $("class-busy").hidden = true;
      }
    });
  }

  render(body) {
    const head = el(
      "tr",
      {},
      el("th", {
        scope: "col",
        class: "corner",
        text: `${body.class_name}, filter ${body.filter}`,
      }),
      ...body.layers.map((layer) =>
        el(
          "th",
          { scope: "col", class: "layer-col", dataset: { layer: layer.summary.name } },
          el("span", { class: "col-name", text: layer.summary.name }),
          el("span", { class: "shape mono", text: layer.summary.keras_shape }),
        ),
      ),
    );
    const rows = body.images.map((image, r) => {
      const right = image.predicted === body.class_name;
      return el(
        "tr",
        { class: "class-row", dataset: { testIndex: image.test_index } },
        el(
          "th",
          { scope: "row", class: "image-cell" },
          el(
            "div",
            { class: "image-cell-inner" },
            el("img", {
              src: image.png,
              class: "pixelated",
              alt: `Test image ${image.test_index}`,
            }),
            el(
              "span",
              { class: "image-facts" },
              el("span", { class: "test-index", text: `test #${image.test_index}` }),
              el("span", { class: "said", text: "the model says" }),
              el("span", {
                class: right ? "verdict right" : "verdict wrong",
                text: `${image.predicted} ${percent(image.probability)}`,
              }),
            ),
          ),
        ),
        ...body.layers.map((layer) => {
          const picture = layer.maps[r];
          return el(
            "td",
            { class: "class-cell", dataset: { layer: layer.summary.name } },
            picture
              ? el("img", {
                  src: picture.png,
                  class: "pixelated",
                  alt: `${layer.summary.name}, filter ${body.filter}, image ${image.test_index}`,
                  title: picture.caption || `${layer.summary.name} (${picture.shape.join(", ")})`,
                })
              : null,
          );
        }),
      );
    });
    this.table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }
}
