// The Analysis tab: modality, an image by picker or drop with its preview, the marks, the
// options, Start with progress, then the result.

import { byId } from "./dom.js";
import { PromptCanvas } from "./prompt.js";
import { renderAnalysis } from "./result.js";
import { UPLOAD_NAMES, checkUpload, megabytes } from "./upload.js";

export class AnalysisForm {
  constructor(api, config, { showError, clearError }) {
    this.api = api;
    this.maxBytes = config.max_image_bytes;
    this.showError = showError;
    this.clearError = clearError;
    this.file = null;
    this.kind = null;
    this.key = null; // one Idempotency-Key per distinct request: a retry cannot analyse twice
    this.form = byId("analysis-form");
    this.result = byId("result");
    this.prompt = new PromptCanvas(
      byId("prompt-canvas"), byId("prompt-tools"), byId("prompt-summary"), () => this.changed(),
    );
    byId("limits-hint").textContent = `PNG, JPEG or DICOM, at most ${megabytes(this.maxBytes)}`;
    byId("file").addEventListener("change", (event) => this.choose(event.target.files[0]));
    byId("prompt-clear").addEventListener("click", () => this.prompt.clear());
    this.form.addEventListener("input", () => this.changed());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    this.setUpDrop(byId("drop-zone"));
  }

  setUpDrop(zone) {
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const [file] = event.dataTransfer.files;
      if (file) this.choose(file);
    });
  }

  changed() {
    this.key = null;
  }

  async choose(file) {
    this.clearError();
    this.changed();
    this.file = null;
    byId("preview").hidden = true;
    if (!file) return;
    try {
      this.kind = await checkUpload(file, this.maxBytes);
    } catch (error) {
      byId("file").value = "";
      this.showError(error);
      return;
    }
    this.file = file;
    byId("file-name").textContent = `${file.name} (${megabytes(file.size)})`;
    byId("preview").hidden = false;
    const dicom = this.kind === "dicom";
    byId("prompt-tools").hidden = dicom;
    byId("prompt-canvas").hidden = dicom;
    if (dicom) {
      this.prompt.bitmap = null;
      this.prompt.clear();
      byId("prompt-summary").textContent =
        "A DICOM file: its image appears with the result (nothing to mark on beforehand).";
      return;
    }
    try {
      this.prompt.show(await createImageBitmap(file));
    } catch {
      this.prompt.bitmap = null;
      byId("prompt-summary").textContent = "This browser cannot preview the image; it can still be analysed.";
    }
  }

  fields() {
    const form = new FormData();
    form.append("file", this.file, UPLOAD_NAMES[this.kind]);
    form.append("modality", this.form.querySelector("input[name=modality]:checked").value);
    const marked = this.prompt.marked;
    form.append("extract_roi", String(byId("extract-roi").checked || marked));
    if (this.prompt.boxField) form.append("box", this.prompt.boxField);
    if (this.prompt.pointsField) form.append("points", this.prompt.pointsField);
    form.append("explain", String(byId("explain").checked));
    const spacing = byId("pixel-spacing").value.trim();
    if (spacing) form.append("pixel_spacing", spacing.includes(",") ? spacing : `${spacing},${spacing}`);
    const frame = byId("frame").value.trim();
    if (this.kind === "dicom" && frame && frame !== "0") form.append("frame", frame);
    return form;
  }

  async start() {
    this.clearError();
    if (!this.file) {
      this.showError(new Error("Choose an image first."));
      return;
    }
    this.key ??= crypto.randomUUID();
    const button = byId("start");
    button.disabled = true;
    this.progress(0);
    try {
      const analysis = await this.api.create(this.fields(), this.key, (done) => this.progress(done));
      this.key = null;
      await renderAnalysis(this.result, analysis, this.api);
      this.result.scrollIntoView({ block: "start" });
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
      byId("progress").hidden = true;
    }
  }

  // The uploaded fraction, then null: the gateway is analysing.
  progress(done) {
    const bar = byId("progress-bar");
    byId("progress").hidden = false;
    if (done === null) {
      bar.removeAttribute("value");
      byId("progress-text").textContent = "Analysing…";
    } else {
      bar.value = done;
      byId("progress-text").textContent = `Uploading ${Math.round(done * 100)} %`;
    }
  }
}
