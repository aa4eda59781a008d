// convlens explorer: the page's entry point (the page panel's script; web/page.py serves it).
// It loads /api/info and wires the three parts.
//
// Stable ids and test hooks (the browser tests rely on these; keep them):
//
// Part 1, playground (#playground, data-image-id = the current image's ImageInfo id)
//   #image-source            fieldset; radios #source-builtin, #source-sample, #source-upload,
//                            #source-draw (click their label[for=...]); #image-error under it
//   #builtin-select          the built-in picture
//   #sample-class, #sample-count, #sample-thumbs (buttons .sample-thumb, data-test-index)
//   #upload                  input type=file (PNG/JPEG), POSTed raw to /api/images
//   #draw-canvas             280x280 drawing canvas; #draw-clear; #brush-size; #draw-prediction
//   #filter-select           presets from /api/info plus "custom"; #filter-error
//   #kernel-grid             nine input.kernel-cell (data-index 0..8, row-major)
//   #stride #padding #pool #pool-size #display; #geometry-error; #convolve-error
//   #input-canvas #filtered-canvas #pooled-canvas   the pictures (canvas pixel = image pixel)
//   #stages                  data-shown: how many answers were drawn in full (all three
//                            pictures sized, hovers explained from then on); aria-busy
//   #input-overlay #filtered-overlay #pooled-overlay  outlines drawn over them
//   #input-shape #filtered-shape #pooled-shape, #*-formula, #*-caption
//   #arithmetic              [data-testid=equation] ExplainBody.equation as returned
//   #arithmetic-sum          [data-testid=sum] ExplainBody.sum; #arithmetic-shown; #explain-grids
//                            (tables data-testid neighbourhood / kernel / products); #explain-error
//   #pool-arithmetic         [data-testid=pool-equation] ExplainPoolBody.equation;
//   #pool-value              [data-testid=pool-value]; #pool-grids (td.chosen: the maximum);
//                            #pool-error
//
// Parts are numbered as shown (.step): without a run, #no-run stands for parts 2 and 3.
// Part 2, journey (#journey-section; hidden with #no-run / #no-run-hint shown when there is no run)
//   #run-select #invert #journey-busy #journey-error
//   #journey-input (canvas), #journey-input-shape, #prediction (#predicted: the class name)
//   #journey                 data-image-id / data-run: what the layers shown are for;
//                            one article.journey-layer per layer, data-layer=<name>,
//                            data-type=<type>;
//                            inside: .shape (keras_shape), .params (data-params), .map-tile buttons
//                            (data-index), .zoom-canvas, .zoom-caption; #learned-filters in
//                            the first conv's section
//                            a click on a .map-tile also opens that filter's #portrait (why.js)
//   #why-toggle #why-method #why-class #why-overlay #why-title #why-note #why-error (why.js)
//   #probabilities           li.prob-bar per class, data-class=<name>, data-probability,
//                            data-index,
//                            data-predicted="true" on the predicted one (also class .predicted)
//
// Part 3, class view (#class-section)
//   #class-select (value: class name; follows the class of the playground's test-set image
//                 until the reader picks one there) #filter-index #class-count #class-busy
//                 #class-error
//   #class-grid              table: thead th.layer-col (data-layer, .shape); tbody tr.class-row per
//                            image (data-test-index), each with th.image-cell and one
//                            td.class-cell per layer
//
// Your model (#your-model): #model-upload, #model-dataset, #model-busy, #model-status, #model-error
//   (js/your_model.js); ?run=<name> in the address chooses the run shown first.
//
// Parts 4-6, the experiment: editor.js, jobs.js and compare.js document their own hooks.
// A job that finishes adds its run to #run-select and the comparison at once.
//
// #version in the header; #reach (who can open the page: InfoBody.reach) in the footer.
// body[data-ready="true"] once /api/info has been read and the parts are wired.
// Every 4xx answer's sentence is shown in the .error[role=alert] next to the control that
// caused it:
// a failed /api/convolve after an image change in #image-error, after a filter change in
// #filter-error, after a stride/padding/pool/display change in #geometry-error.

import * as api from "./api.js";
import { ClassView } from "./classview.js";
import { Comparison } from "./compare.js";
import { percent, showError } from "./draw.js";
import { Editor } from "./editor.js";
import { Trainer } from "./jobs.js";
import { Journey } from "./journey.js";
import { Playground } from "./playground.js";
import { Why } from "./why.js";
import { wireModelUpload } from "./your_model.js";

const $ = (id) => document.getElementById(id);

/** Number the parts shown 1, 2, 3, ... (parts 2 and 3 give way to #no-run without a run). */
function numberParts() {
  let shown = 0;
  for (const part of document.querySelectorAll("main > section.part")) {
    const step = part.querySelector(":scope > .part-head .step, :scope > h2 .step");
    if (step && !part.hidden) step.textContent = String((shown += 1));
  }
}

function runFacts(run) {
  const parts = [`model ${run.model}`];
  if (run.imported_from) parts.push(`imported from ${run.imported_from}`);
  if (run.dataset) parts.push(`${run.imported_from ? "scored" : "trained"} on ${run.dataset}`);
  if (run.epochs !== null && run.epochs !== undefined) parts.push(`${run.epochs} epochs`);
  if (run.test_accuracy !== null && run.test_accuracy !== undefined) {
    parts.push(`test accuracy ${percent(run.test_accuracy)}`);
  }
  if (run.test_time_flip) parts.push("predicts from each image and its mirror");
  return parts.join(" · ");
}

async function start() {
  let info;
  try {
    info = await api.info();
  } catch (error) {
    showError($("startup-error"), error.message);
    return;
  }
  $("version").textContent = `v${info.version}`;
  $("reach").textContent = info.reach || "";
  $("version").title = info.reach || "";

  const playground = new Playground();
  const why = new Why();
  const journey = new Journey({
    onPrediction: (predicted, body) => {
      $("draw-prediction").textContent = predicted
        ? `The model says ${predicted.name} (${percent(predicted.probability)}).`
        : "";
      why.setJourney(body, journey.image);
    },
  });
  const classView = new ClassView();

  playground.filters.setPresets(info.filters);
  playground.chooser.setBuiltins(info.builtin_images);
  playground.chooser.setSampleClasses(info.sample_classes || []);
  const comparison = new Comparison();
  playground.onImageChange((image) => {
    journey.setImage(image);
    comparison.setImage(image);
    if (image.label) classView.follow(image.label); // a test-set image: its class below
  });

  let runs = info.runs || [];
  const select = $("run-select");
  const choose = () => {
    const run = runs.find((r) => r.name === select.value);
    $("run-facts").textContent = runFacts(run);
    playground.chooser.setRun(run);
    journey.setRun(run);
    classView.setRun(run);
  };
  select.addEventListener("change", choose);
  const showRuns = (chosen) => {
    select.replaceChildren();
    for (const run of runs) {
      const option = document.createElement("option");
      option.value = run.name;
      option.textContent = `${run.name} (${run.model})`;
      select.append(option);
    }
    for (const id of ["journey-section", "class-section", "nav-journey", "nav-class"]) {
      $(id).hidden = !runs.length;
    }
    $("no-run").hidden = Boolean(runs.length);
    numberParts();
    if (!runs.length) {
      $("no-run-hint").textContent =
        info.no_run_hint || "There is no trained run yet; train one with `convlens train`.";
      playground.chooser.setRun(null);
      return;
    }
    select.value = runs.some((r) => r.name === chosen) ? chosen : runs[0].name;
    choose();
  };
  // ?run=<name> in the address chooses the run shown first (a model just uploaded).
  showRuns(new URLSearchParams(window.location.search).get("run") || info.default_run);

  // The experiment: the editor's model is what the trainer trains; a finished job's run
  // joins the run selector and the comparison.
  const trainer = new Trainer({
    onRunWritten: async (name) => {
      try {
        runs = (await api.info()).runs || [];
      } catch (error) {
        showError($("startup-error"), error.message);
        return;
      }
      showRuns(select.value || name);
      editor.setRuns(runs);
      comparison.setRuns(runs, name);
    },
    onDataset: (dataset) => editor.setDataset(dataset), // the editor shows the model on it
  });
  const editor = new Editor({ onChange: (model) => trainer.setModel(model) });
  comparison.setRuns(runs);
  try {
    const [presets, layerTypes, jobs] = await Promise.all([api.modelPresets(), api.layerTypes(), api.jobsInfo()]);
    editor.setSources(presets, runs, layerTypes);
    trainer.setOptions(jobs);
  } catch (error) {
    showError($("startup-error"), error.message);
  }

  wireModelUpload();

  // The first image: the first built-in picture.
  if (info.builtin_images.length) playground.chooser.useBuiltin();
  document.body.dataset.ready = "true";
}

start();
