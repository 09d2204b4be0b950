// One analysis as the clinician reads it: the label and why, every caveat, the image with the
// lesion's outline and the region classified, the Grad-CAM heatmap on demand, the lesion's
// size, the models that answered.

import { el, percent } from "./dom.js";

const OUTLINE = "#00e5ff"; // the mask's edge
const REGION = "#ffd400"; // the box the lesion was classified in

export async function renderAnalysis(container, analysis, api) {
  const canvas = el("canvas", { class: "image result-image" });
  const heatmap = el("img", { class: "image heatmap", alt: "Grad-CAM heatmap", hidden: true });
  container.replaceChildren(
    verdict(analysis),
    el("div", { class: "result-body" },
      figure(analysis, canvas, heatmap, api),
      el("div", { class: "result-facts" },
        caveats(analysis),
        lesion(analysis),
        dicom(analysis),
        models(analysis),
        meta(analysis),
      ),
    ),
  );
  container.dataset.analysisId = analysis.id;
  container.hidden = false;
  await drawImage(canvas, analysis, api);
}

function verdict(analysis) {
  const { label, probabilities, decision_threshold: threshold } = analysis;
  const malignant = probabilities.malignant;
  const side = malignant >= threshold ? "at or above" : "below";
  return el("div", { class: "verdict" },
    el("h2", { class: `label label-${label}`, text: label === "malignant" ? "Malignant" : "Benign" }),
    el("dl", { class: "probabilities" },
      ...probability("Malignant", malignant),
      ...probability("Benign", probabilities.benign),
    ),
    el("p", {
      class: "threshold",
      text: `The model calls an image malignant when P(malignant) is at least ` +
        `${percent(threshold)}; this one's ${percent(malignant)} is ${side} it.`,
    }),
  );
}

function probability(name, value) {
  return [
    el("dt", { text: name }),
    el("dd", {},
      el("meter", { min: 0, max: 1, value, title: percent(value) }),
      el("span", { class: "probability", text: percent(value) })),
  ];
}

function caveats(analysis) {
  if (analysis.caveats.length === 0) return null;
  return el("section", { class: "caveats" },
    el("h3", { text: "Caveats" }),
    el("ul", {}, ...analysis.caveats.map((c) => el("li", { text: c.detail, "data-code": c.code }))),
  );
}

function figure(analysis, canvas, heatmap, api) {
  const toggle = el("input", { type: "checkbox", class: "heatmap-toggle" });
  const hasHeatmap = analysis.heatmap !== null;
  toggle.disabled = !hasHeatmap;
  const problem = el("span", { class: "hint", role: "status" });
  toggle.addEventListener("change", async () => {
    problem.textContent = "";
    try {
      if (toggle.checked && !heatmap.src) heatmap.src = await api.blobUrl(analysis.heatmap.url);
    } catch (error) {
      toggle.checked = false;
      problem.textContent = `The heatmap could not be shown: ${error.message}`;
    }
    heatmap.hidden = !toggle.checked;
    canvas.hidden = toggle.checked;
  });
  const roi = analysis.roi;
  const legend = [];
  if (roi?.mask) legend.push(el("span", { class: "key key-outline", text: "the lesion's outline" }));
  if (roi?.bbox) legend.push(el("span", { class: "key key-region", text: "the region classified" }));
  return el("figure", { class: "result-figure" },
    canvas,
    heatmap,
    el("figcaption", {},
      ...legend,
      el("label", { class: "check" }, toggle,
        hasHeatmap ? " Show the Grad-CAM heatmap (red: what drove the decision)"
          : " No heatmap: none was asked for"),
      problem,
    ),
  );
}

function millimetres(value, unit = "mm") {
  return `${value.toFixed(1)} ${unit}`;
}

function lesion(analysis) {
  const roi = analysis.roi;
  if (!roi) return el("p", { class: "lesion", text: "The whole image was classified: no lesion was extracted." });
  if (!roi.lesion_found && !roi.size) {
    return el("p", { class: "lesion", text: "No lesion was found in the image." });
  }
  const facts = [];
  if (!roi.lesion_found) facts.push("No lesion was found inside the box; it was classified as drawn.");
  const size = roi.size;
  if (size) {
    const from = size.measured_on === "mask" ? "from its outline" : "from the box (area: its inscribed ellipse)";
    const px = `${size.width_px} × ${size.height_px} px, ${Math.round(size.area_px)} px²`;
    facts.push(
      size.width_mm !== null
        ? `Lesion ${millimetres(size.width_mm)} wide, ${millimetres(size.height_mm)} high, ` +
            `${millimetres(size.area_mm2, "mm²")} (${px}), ${from}.`
        : `Lesion ${px}, ${from}; no pixel spacing was known, so no millimetres.`,
    );
  }
  if (roi.score !== null) facts.push(`Segmenter's confidence in the outline: ${percent(roi.score)}.`);
  return el("section", { class: "lesion" }, el("h3", { text: "Lesion" }),
    ...facts.map((text) => el("p", { text })));
}

function dicom(analysis) {
  const info = analysis.dicom;
  if (!info) return null;
  const rows = [
    ["Modality", info.modality],
    ["Manufacturer", info.manufacturer],
    ["Photometric interpretation", info.photometric_interpretation],
    ["Pixel spacing", info.pixel_spacing_mm && `${info.pixel_spacing_mm.join(" × ")} mm`],
    ["Frame", `${info.frame + 1} of ${info.frames}`],
  ].filter(([, value]) => value);
  return el("section", { class: "dicom" }, el("h3", { text: "DICOM" }),
    el("dl", {}, ...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })])));
}

function models(analysis) {
  const { classifier, segmenter } = analysis.models;
  const rows = [["Classifier", classifier]];
  if (segmenter) rows.push(["Segmenter", segmenter]);
  return el("section", { class: "models" }, el("h3", { text: "Models" }),
    el("dl", {}, ...rows.flatMap(([role, model]) => [
      el("dt", { text: role }), el("dd", { text: `${model.name} ${model.version}` }),
    ])));
}

function meta(analysis) {
  const created = new Date(analysis.created_at).toLocaleString();
  return el("p", {
    class: "meta hint",
    text: `${analysis.modality}, ${created}, ${Math.round(analysis.timings.total_ms)} ms · ${analysis.id}`,
  });
}

// The image, then the mask's outline and the classified box over it, at the image's pixels.
async function drawImage(canvas, analysis, api) {
  const image = await createImageBitmap(await api.blob(analysis.image.url));
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const drawn = ["image"];
  const line = Math.max(1, Math.round(Math.max(image.width, image.height) / 300));
  const roi = analysis.roi;
  if (roi?.mask) {
    const mask = await createImageBitmap(await api.blob(roi.mask.url));
    drawOutline(context, mask, line);
    drawn.push("mask");
  }
  if (roi?.bbox) {
    const { x0, y0, x1, y1 } = roi.bbox;
    context.setLineDash([line * 4, line * 3]);
    context.lineWidth = line;
    context.strokeStyle = REGION;
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
    drawn.push("box");
  }
  canvas.dataset.drawn = drawn.join(" ");
}

function drawOutline(context, mask, radius) {
  const { width, height } = mask;
  const scratch = new OffscreenCanvas(width, height).getContext("2d");
  scratch.drawImage(mask, 0, 0);
  const pixels = scratch.getImageData(0, 0, width, height).data;
  const inside = (x, y) => x >= 0 && y >= 0 && x < width && y < height && pixels[(y * width + x) * 4] > 127;
  context.fillStyle = OUTLINE;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const edge = inside(x, y) &&
        !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1));
      if (edge) context.fillRect(x - radius + 1, y - radius + 1, 2 * radius - 1, 2 * radius - 1);
    }
  }
}
