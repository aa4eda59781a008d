// "Your model": a .keras, .h5 or .onnx file from the reader's disk becomes a run of this
// explorer (POST /api/models); the page then reloads with ?run=<the new run> so the journey
// and the class view use it at once. A refused file shows the server's one sentence.
//
// Test hooks: #model-upload (input type=file), #model-dataset, #model-busy, #model-status,
// #model-error (role=alert).

import * as api from "./api.js";
import { showError } from "./draw.js";

const $ = (id) => document.getElementById(id);

/** Wire the upload control; safe to call once the page is loaded. */
export function wireModelUpload() {
  const input = $("model-upload");
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    showError($("model-error"), "");
    $("model-status").textContent = "";
    $("model-busy").hidden = false;
    try {
      const answer = await api.uploadModel(file, file.name, $("model-dataset").value);
      const params = answer.total_params.toLocaleString("en");
      $("model-status").textContent =
        `${file.name} is now the run ${answer.run.name} (${params} parameters); loading it...`;
      const url = new URL(window.location.href);
      url.searchParams.set("run", answer.run.name);
      window.location.assign(url.toString());
    } catch (error) {
      showError($("model-error"), error.message);
    } finally {
      $("model-busy").hidden = true;
      input.value = "";
    }
  });
}
