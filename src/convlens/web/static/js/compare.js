// Part 6: runs side by side (GET /api/compare) and the playground's image through each
// (POST /api/compare/predict). The lesson's CNN against its dense baseline, trained on one
// dataset, is chosen first (GET /api/compare/default). A prediction's verdict (✓ / ✗) is
// shown only when the image's label is one of that run's classes.
//
// Test hooks: #compare-runs (input[type=checkbox] value = run name), #compare-error,
// #compare-table (tbody tr[data-run], td.accuracy / .params[data-params] / .seconds),
// #compare-accuracy and #compare-loss (canvases, data-runs), #compare-classes (table),
// #compare-predictions (figure.run-prediction[data-run][data-predicted], .verdict when there is
// one), #comparison[data-runs]; the charts' canvas.dataset.layout (charts.js).

import * as api from "./api.js";
import { COLOURS, lineChart } from "./charts.js";
import { el, percent, showError } from "./draw.js";

const $ = (id) => document.getElementById(id);

export class Comparison {
  constructor() {
    this.runs = [];
    this.image = null;
    this.body = null;
    this.generation = 0;
    this.root = $("comparison");
    this.choices = el("div", { id: "compare-runs", class: "compare-runs", role: "group", "aria-label": "Runs to compare" });
    this.error = el("p", { id: "compare-error", class: "error", role: "alert", hidden: true });
    this.table = el("table", { id: "compare-table", class: "compare-table" });
    this.accuracy = el("canvas", { id: "compare-accuracy", class: "curve", role: "img", "aria-label": "Test accuracy per epoch" });
    this.loss = el("canvas", { id: "compare-loss", class: "curve", role: "img", "aria-label": "Training loss per epoch" });
    this.classes = el("table", { id: "compare-classes", class: "compare-table classes" });
    this.predictions = el("div", { id: "compare-predictions", class: "compare-predictions" });
    this.hint = el("p", { class: "note", text: "Choose two or more runs." });
    this.root.append(
      el("div", { class: "toolbar card" }, el("span", { class: "label", text: "Runs" }), this.choices),
      this.error,
      el(
        "div",
        { class: "card compare-card" },
        this.hint,
        el("div", { class: "table-scroll" }, this.table),
        el("div", { class: "curves" }, this.accuracy, this.loss),
        el("div", { class: "block-label", text: "Per-class test accuracy" }),
        el("div", { class: "class-grid-wrap" }, this.classes),
        el("div", { class: "block-label", text: "The playground's image through each run" }),
        this.predictions,
      ),
    );
  }

  /** The runs to choose from (newest first); keeps the choice, else picks the lesson's pair
   * (GET /api/compare/default: its CNN and its dense baseline trained on one dataset). */
  async setRuns(runs, chosenFirst = null) {
    const before = new Set(this.chosen());
    this.runs = runs;
    let chosen = runs.filter((r) => before.has(r.name)).map((r) => r.name);
    if (chosenFirst && !chosen.includes(chosenFirst)) chosen.unshift(chosenFirst);
    if (chosen.length < 2 && runs.length) {
      try {
        const pair = (await api.compareDefault()).runs;
        chosen = chosen.length ? [chosen[0], ...pair.filter((n) => n !== chosen[0])].slice(0, 2) : pair;
      } catch (error) {
        showError(this.error, error.message);
      }
      if (this.runs !== runs) return; // newer runs arrived meanwhile
    }
    this.choices.replaceChildren(
      ...runs.map((run) => {
        const id = `compare-${run.name}`;
        const box = el("input", { type: "checkbox", id, value: run.name });
        box.checked = chosen.includes(run.name);
        box.addEventListener("change", () => this.update());
        return el("label", { class: "chip-check", for: id }, box, ` ${run.name}`);
      }),
    );
    this.update();
  }

  chosen() {
    return [...this.choices.querySelectorAll("input:checked")].map((box) => box.value);
  }

  setImage(image) {
    this.image = image;
    this.updatePredictions();
  }

  async update() {
    const names = this.chosen();
    this.root.dataset.runs = names.join(",");
    const generation = ++this.generation;
    this.hint.hidden = names.length >= 2;
    if (!names.length) {
      this.body = null;
      this.render();
      return;
    }
    try {
      const body = await api.compareRuns(names);
      if (generation !== this.generation) return;
      showError(this.error, "");
      this.body = body;
      this.render();
      this.updatePredictions();
    } catch (error) {
      if (generation === this.generation) showError(this.error, error.message);
    }
  }

  render() {
    const runs = this.body ? this.body.runs : [];
    const head = ["Run", "Model", "Dataset", "Test accuracy", "Parameters", "Training time", "Images/s", "Epochs"];
    this.table.replaceChildren(
      el("thead", {}, el("tr", {}, ...head.map((t) => el("th", { text: t })))),
      el(
        "tbody",
        {},
        ...runs.map((run, i) =>
          el(
            "tr",
            { dataset: { run: run.name } },
            el("td", {}, el("span", { class: "swatch", style: `background:${COLOURS[i % COLOURS.length]}` }), run.name),
            el("td", { text: run.model }),
            el("td", { text: run.dataset || "" }),
            el("td", { class: "accuracy mono", text: run.test_accuracy === null ? "" : percent(run.test_accuracy) }),
            el("td", { class: "params mono", dataset: { params: run.total_params }, text: run.total_params.toLocaleString("en-US") }),
            el("td", { class: "seconds mono", text: run.seconds === null ? "" : `${run.seconds.toFixed(1)} s` }),
            el("td", { class: "mono", text: run.images_per_second === null ? "" : Math.round(run.images_per_second).toLocaleString("en-US") }),
            el("td", { class: "mono", text: run.epochs === null ? "" : String(run.epochs) }),
          ),
        ),
      ),
    );
    const series = (key) =>
      runs.map((run, i) => ({
        name: run.name,
        colour: COLOURS[i % COLOURS.length],
        dots: true,
        points: run.history.filter((h) => h[key] !== null && h[key] !== undefined).map((h) => [h.epoch, h[key]]),
      }));
    lineChart(this.accuracy, series("test_accuracy"), { title: "Test accuracy per epoch", xLabel: "epoch", percent: true });
    lineChart(this.loss, series("train_loss"), { title: "Training loss per epoch", xLabel: "epoch" });
    this.accuracy.dataset.runs = String(runs.length);
    this.loss.dataset.runs = String(runs.length);
    this.renderClasses(runs);
  }

  renderClasses(runs) {
    if (!runs.length) {
      this.classes.replaceChildren();
      return;
    }
    const names = runs[0].class_names;
    const same = runs.every((r) => r.class_names.join("\n") === names.join("\n"));
    if (!same) {
      const note = el("td", { class: "hint", text: "These runs have different classes; compare runs of one dataset." });
      this.classes.replaceChildren(el("tbody", {}, el("tr", {}, note)));
      return;
    }
    const rows = names.map((name, c) => {
      const values = runs.map((r) => r.per_class_accuracy[c]);
      const best = Math.max(...values.filter((v) => v !== null && v !== undefined));
      return el(
        "tr",
        { dataset: { class: name } },
        el("th", { text: name }),
        ...values.map((v) =>
          el("td", { class: v === best && runs.length > 1 ? "mono best" : "mono", text: v === null || v === undefined ? "" : percent(v) }),
        ),
      );
    });
    this.classes.replaceChildren(
      el("thead", {}, el("tr", {}, el("th", { text: "Class" }), ...runs.map((r) => el("th", { text: r.name })))),
      el("tbody", {}, ...rows),
    );
  }

  async updatePredictions() {
    const names = this.body ? this.body.runs.map((r) => r.name) : [];
    if (!this.image || !names.length) {
      this.predictions.replaceChildren();
      return;
    }
    const generation = this.generation;
    try {
      const body = await api.comparePredict({ runs: names, image: this.image.id, invert: $("invert") ? $("invert").value : "auto" });
      if (generation !== this.generation) return;
      this.predictions.replaceChildren(
        ...body.predictions.map((p) => {
          const right = p.correct; // null: no label, or one the run does not know
          return el(
            "figure",
            { class: "run-prediction card", dataset: { run: p.run, predicted: p.predicted.name } },
            el("img", { src: p.input_png, alt: `What ${p.run} sees`, class: "pixelated" }),
            el(
              "figcaption",
              {},
              el("b", { text: p.run }),
              el("br"),
              `says ${p.predicted.name}, ${percent(p.predicted.probability)}`,
              right === null ? "" : el("span", { class: right ? "verdict right" : "verdict wrong", text: right ? " ✓ right" : ` ✗ (it is ${body.label})` }),
            ),
          );
        }),
      );
    } catch (error) {
      showError(this.error, error.message);
    }
  }
}
