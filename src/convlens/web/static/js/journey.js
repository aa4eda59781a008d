// Part 2: the journey of the playground's image through a run's model (POST /api/journey).
// One .journey-layer per layer: its summary row, its feature maps (tiles of a MapGrid atlas),
// the learned filters beside the first convolution, and the class probabilities at the end.

import * as api from "./api.js";
import {
  el,
  latestOnly,
  loadImage,
  numberGrid,
  numberText,
  paint,
  percent,
  pixelScale,
  showError,
  tileRect,
} from "./draw.js";

const $ = (id) => document.getElementById(id);

export class Journey {
  constructor({ onPrediction = () => {} } = {}) {
    this.onPrediction = onPrediction;
    this.run = null;
    this.image = null;
    this.requests = latestOnly();
    this.selected = new Map(); // layer name -> the map shown large
    this.container = $("journey");
    this.error = $("journey-error");
    $("invert").addEventListener("change", () => this.update());
  }

  setRun(run) {
    this.run = run;
    this.selected.clear();
    this.update();
  }

  setImage(image) {
    this.image = image;
    this.update();
  }

  update() {
    if (!this.run || !this.image) return;
    const request = { run: this.run.name, image: this.image.id, invert: $("invert").value };
    this.requests(async (isLatest) => {
      $("journey-busy").hidden = false;
      try {
        const body = await api.journey(request);
        if (!isLatest()) return;
        showError(this.error, "");
        await this.render(body);
        this.container.dataset.imageId = request.image;
        this.container.dataset.run = request.run;
        this.onPrediction(body.predicted, body);
      } catch (error) {
        if (!isLatest()) return;
        showError(this.error, error.message);
        this.container.replaceChildren();
        delete this.container.dataset.imageId;
        $("journey-start").hidden = true;
        this.onPrediction(null, null);
      } finally {
        if (isLatest()) $("journey-busy").hidden = true;
      }
    });
  }

  async render(body) {
    await this.renderInput(body);
    const images = await Promise.all(
      body.layers.map((layer) => (layer.maps ? loadImage(layer.maps.png) : null)),
    );
    const filterAtlas = body.filters ? await loadImage(body.filters.grid.png) : null;
    let filtersLayer = body.filters ? body.filters.layer : null;
    if (filtersLayer && !body.layers.some((l) => l.summary.name === filtersLayer)) {
      const conv = body.layers.find((l) => l.summary.type === "Conv2D");
      filtersLayer = conv ? conv.summary.name : null;
    }
    const sections = body.layers.map((layer, index) => {
      const last = index === body.layers.length - 1;
      const section = this.layerSection(layer, index, images[index]);
      const content = section.querySelector(".layer-body");
      if (filtersLayer === layer.summary.name) {
        content.append(this.filtersBlock(body.filters, filterAtlas));
      }
      if (last) content.append(probabilities(body));
      else if (layer.values && !layer.maps) content.append(vectorStrip(layer.values));
      return section;
    });
    this.container.replaceChildren(...sections);
  }

  async renderInput(body) {
    $("journey-start").hidden = false;
    const image = await loadImage(body.input.png);
    const [h, w] = body.input.shape;
    paint($("journey-input"), image, pixelScale(h, w, 168));
    $("journey-input-shape").textContent = `(${body.input.shape.join(", ")})`;
    const notes = [body.input.caption, body.input.formula].filter(Boolean);
    if (body.inverted) notes.push("Inverted: the model was trained on light shapes on black.");
    $("journey-input-caption").textContent = notes.join(" ");
    const p = body.predicted;
    $("prediction").replaceChildren(
      el("span", { class: "prediction-label", text: `${body.model} says` }),
      el("strong", { class: "prediction-name", id: "predicted", text: p.name }),
      el("span", { class: "prediction-probability", text: percent(p.probability) }),
    );
  }

  layerSection(layer, index, atlas) {
    const s = layer.summary;
    const section = el(
      "article",
      {
        class: "journey-layer card",
        dataset: { layer: s.name, type: s.type },
        "aria-label": `Layer ${s.name}`,
      },
      el(
        "header",
        { class: "layer-head" },
        el(
          "div",
          { class: "layer-title" },
          el("span", { class: "layer-index", text: String(index + 1) }),
          el("h3", { class: "layer-name", text: s.name }),
          el("span", { class: "layer-type", text: s.type }),
        ),
        el(
          "div",
          { class: "layer-facts" },
          el("span", { class: "shape mono", title: "Output shape (Keras)", text: s.keras_shape }),
          el("span", {
            class: "params",
            dataset: { params: s.params },
            text: `${s.params.toLocaleString("en-US")} params`,
          }),
        ),
      ),
      el(
        "div",
        { class: "layer-why" },
        el("p", { class: "why shape-why" }, el("b", { text: "Shape " }), s.shape_why),
        el("p", { class: "why params-why" }, el("b", { text: "Params " }), s.params_why),
        s.receptive_field_why &&
          el("p", { class: "why field-why" }, el("b", { text: "Sees " }), s.receptive_field_why),
      ),
      el("div", { class: "layer-body" }),
    );
    if (layer.maps && atlas) {
      section.querySelector(".layer-body").append(this.mapsBlock(s.name, layer.maps, atlas));
    }
    return section;
  }

  /** Every map of a layer as its own small canvas; the chosen one large beside them. */
  mapsBlock(name, grid, atlas) {
    const [th, tw] = grid.tile;
    const zoomCanvas = el("canvas", { class: "pixelated zoom-canvas", role: "img" });
    const zoomCaption = el("figcaption", { class: "zoom-caption" });
    const zoom = el("figure", { class: "zoom" }, zoomCanvas, zoomCaption);
    const tiles = el("div", {
      class: "tiles",
      role: "group",
      "aria-label": `${name}: ${grid.count} maps`,
    });
    const choose = (k) => {
      this.selected.set(name, k);
      paint(zoomCanvas, atlas, pixelScale(th, tw, 168), tileRect(grid, k));
      zoomCanvas.setAttribute("aria-label", `${name}, map ${k}, enlarged`);
      const [low, high] = grid.ranges[k] || [];
      zoomCaption.replaceChildren(
        el("b", { text: `Map ${k}` }),
        ` of ${grid.count}`,
        el("br"),
        el("span", {
          class: "range mono",
          text: `dark ${numberText(low)} … bright ${numberText(high)}`,
        }),
      );
      markSelected(tiles, k);
    };
    addTiles(tiles, grid, atlas, { size: 52, noun: "Map", extraClass: "", choose });
    const start = this.selected.get(name);
    choose(start !== undefined && start < grid.count ? start : 0);
    return el(
      "div",
      { class: "maps-block" },
      el("div", { class: "block-label", text: `Feature maps (${grid.count})` }),
      el("div", { class: "maps-row" }, tiles, zoom),
    );
  }

  /** The first convolution's learned kernels: each tile on its own diverging scale, numbers enlarged. */
  filtersBlock(filters, atlas) {
    const grid = filters.grid;
    const [th, tw] = grid.tile;
    const zoomCanvas = el("canvas", { class: "pixelated zoom-canvas small", role: "img" });
    const numbers = el("div", { class: "filter-numbers" });
    const caption = el("figcaption", { class: "zoom-caption" });
    const tiles = el("div", {
      class: "tiles filter-tiles",
      role: "group",
      "aria-label": "Learned filters",
    });
    const choose = (k) => {
      paint(zoomCanvas, atlas, pixelScale(th, tw, 96), tileRect(grid, k));
      zoomCanvas.setAttribute("aria-label", `Learned filter ${k}, enlarged`);
      numbers.replaceChildren(numberGrid(filters.kernels[k] || [], { testid: "filter-kernel" }));
      const [low, high] = grid.ranges[k] || [];
      caption.replaceChildren(
        el("b", { text: `Filter ${k}` }),
        el("br"),
        el("span", {
          class: "range mono",
          text: `scale ${numberText(low)} … ${numberText(high)}`,
        }),
      );
      markSelected(tiles, k);
    };
    addTiles(tiles, grid, atlas, { size: 30, noun: "Filter", extraClass: " filter-tile", choose });
    choose(0);
    return el(
      "div",
      { class: "filters-block", id: "learned-filters" },
      el("div", {
        class: "block-label",
        text: filters.caption,
      }),
      el(
        "div",
        { class: "maps-row" },
        tiles,
        el(
          "figure",
          { class: "zoom" },
          el("div", { class: "zoom-pair" }, zoomCanvas, numbers),
          caption,
        ),
      ),
    );
  }
}

/** Outline the tile with data-index ``k`` among ``tiles``' children. */
function markSelected(tiles, k) {
  for (const tile of tiles.children) {
    tile.classList.toggle("selected", Number(tile.dataset.index) === k);
  }
}

/** A flat layer's output drawn as bars, one per value (drawing only: heights are relative). */
function vectorStrip(values) {
  const canvas = el("canvas", {
    class: "vector-strip",
    role: "img",
    "aria-label": `${values.length} values as bars`,
  });
  const width = 960;
  const height = 72;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const biggest = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  const negative = values.some((v) => v < 0);
  const base = negative ? height / 2 : height - 1;
  const reach = negative ? height / 2 - 2 : height - 3;
  const step = width / Math.max(values.length, 1);
  context.fillStyle = "#f4f5f8";
  context.fillRect(0, 0, width, height);
  values.forEach((v, i) => {
    const h = (Math.abs(v) / biggest) * reach;
    context.fillStyle = v >= 0 ? "#e8590c" : "#1c7ed6";
    const barWidth = Math.max(step - (step > 3 ? 1 : 0), 0.6);
    context.fillRect(i * step, v >= 0 ? base - h : base, barWidth, h);
  });
  context.fillStyle = "#9aa1ad";
  context.fillRect(0, Math.round(base), width, 1);
  return el(
    "div",
    { class: "vector-block" },
    el("div", { class: "block-label", text: `Output vector: ${values.length} values` }),
    canvas,
  );
}

/** The class probabilities as horizontal bars, the predicted class highlighted. */
function probabilities(body) {
  const list = el("ol", {
    id: "probabilities",
    class: "probabilities",
    "aria-label": "Class probabilities",
  });
  for (const p of body.probabilities) {
    const predicted = p.index === body.predicted.index;
    const fill = el("span", { class: "prob-fill" });
    fill.style.width = `${Math.max(0, Math.min(1, p.probability)) * 100}%`;
    list.append(
      el(
        "li",
        {
          class: predicted ? "prob-bar predicted" : "prob-bar",
          dataset: {
            class: p.name,
            index: p.index,
            probability: p.probability,
            predicted: predicted ? "true" : "false",
          },
        },
        el("span", { class: "prob-name", text: p.name }),
        el("span", { class: "prob-track" }, fill),
        el("span", { class: "prob-value mono", text: percent(p.probability) }),
      ),
    );
  }
  return el(
    "div",
    { class: "probabilities-block" },
    el("div", { class: "block-label", text: "Class probabilities" }),
    list,
  );
}

/** One button per tile of a MapGrid, each drawing its tile; a click calls choose(k). */
function addTiles(tiles, grid, atlas, { size, noun, extraClass, choose }) {
  const [th, tw] = grid.tile;
  const scale = pixelScale(th, tw, size);
  for (let k = 0; k < grid.count; k += 1) {
    const canvas = el("canvas", { class: "pixelated" });
    paint(canvas, atlas, scale, tileRect(grid, k));
    const tile = el(
      "button",
      {
        type: "button",
        class: `map-tile${extraClass}`,
        dataset: { index: k },
        title: `${noun} ${k}`,
        "aria-label": `${noun} ${k}: enlarge`,
      },
      canvas,
    );
    tile.addEventListener("click", () => {
      choose(k);
      // why.js opens the filter's portrait; only maps are filters' outputs.
      if (noun === "Map") {
        tile.dispatchEvent(new CustomEvent("maptile", { bubbles: true, detail: { index: k } }));
      }
    });
    tiles.append(tile);
  }
}
