// The preview the user marks the lesion on: a box by dragging, points by tapping, all in the
// image's own pixels (what the API's `box` and `points` fields take).

const MAX_POINTS = 16;
const MIN_BOX_PX = 4; // a shorter drag is a tap, not a box
const COLOURS = { box: "#ffd400", lesion: "#00e676", background: "#ff5252" };

export class PromptCanvas {
  constructor(canvas, tools, summary, onChange) {
    this.canvas = canvas;
    this.tools = tools;
    this.summary = summary;
    this.onChange = onChange;
    this.context = canvas.getContext("2d");
    this.bitmap = null;
    this.box = null;
    this.points = [];
    this.drag = null;
    canvas.addEventListener("pointerdown", (event) => this.down(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    canvas.addEventListener("pointerup", (event) => this.up(event));
    canvas.addEventListener("pointercancel", () => this.cancel());
  }

  show(bitmap) {
    this.bitmap = bitmap;
    this.canvas.width = bitmap.width;
    this.canvas.height = bitmap.height;
    this.clear();
  }

  clear() {
    this.box = null;
    this.points = [];
    this.drag = null;
    this.draw();
    this.changed();
  }

  get tool() {
    return this.tools.querySelector("input[name=tool]:checked").value;
  }

  get marked() {
    return this.box !== null || this.points.length > 0;
  }

  // The form fields: "x0,y0,x1,y1" and "x,y,label;…", or null.
  get boxField() {
    return this.box && [this.box.x0, this.box.y0, this.box.x1, this.box.y1].join(",");
  }

  get pointsField() {
    if (this.points.length === 0) return null;
    return this.points.map((p) => `${p.x},${p.y},${p.label}`).join(";");
  }

  imagePoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * this.canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * this.canvas.height) / rect.height;
    return {
      x: Math.min(Math.max(Math.round(x), 0), this.canvas.width),
      y: Math.min(Math.max(Math.round(y), 0), this.canvas.height),
    };
  }

  down(event) {
    if (!this.bitmap) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.drag = { start: this.imagePoint(event), end: null };
  }

  move(event) {
    if (!this.drag || this.tool !== "box") return;
    this.drag.end = this.imagePoint(event);
    this.draw();
  }

  up(event) {
    if (!this.drag) return;
    const { start } = this.drag;
    const end = this.imagePoint(event);
    this.drag = null;
    const dragged = Math.abs(end.x - start.x) >= MIN_BOX_PX && Math.abs(end.y - start.y) >= MIN_BOX_PX;
    if (this.tool === "box" && dragged) {
      this.box = spanned(start, end);
    } else if (this.tool !== "box" && this.points.length < MAX_POINTS) {
      const x = Math.min(end.x, this.canvas.width - 1);
      const y = Math.min(end.y, this.canvas.height - 1);
      this.points.push({ x, y, label: this.tool === "lesion" ? 1 : 0 });
    }
    this.draw();
    this.changed();
  }

  cancel() {
    this.drag = null;
    this.draw();
  }

  draw() {
    const { context, canvas } = this;
    if (!this.bitmap) return;
    context.drawImage(this.bitmap, 0, 0);
    const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 250));
    context.lineWidth = line;
    const box = this.drag?.end ? spanned(this.drag.start, this.drag.end) : this.box;
    if (box) {
      context.strokeStyle = COLOURS.box;
      context.strokeRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
    }
    for (const point of this.points) {
      context.fillStyle = point.label === 1 ? COLOURS.lesion : COLOURS.background;
      context.beginPath();
      context.arc(point.x, point.y, line * 2.5, 0, 2 * Math.PI);
      context.fill();
    }
  }

  changed() {
    const parts = [];
    if (this.box) {
      const { x0, y0, x1, y1 } = this.box;
      parts.push(`box ${x1 - x0} × ${y1 - y0} px at (${x0}, ${y0})`);
    }
    const lesion = this.points.filter((p) => p.label === 1).length;
    const background = this.points.length - lesion;
    if (lesion) parts.push(`${lesion} lesion point${lesion > 1 ? "s" : ""}`);
    if (background) parts.push(`${background} background point${background > 1 ? "s" : ""}`);
    this.summary.textContent = parts.length
      ? `Marked: ${parts.join(", ")}. The lesion is extracted from these marks.`
      : "Drag a box around the lesion, or tap points on it, to guide the extraction.";
    this.onChange();
  }
}

function spanned(a, b) {
  return {
    x0: Math.min(a.x, b.x),
    y0: Math.min(a.y, b.y),
    x1: Math.max(a.x, b.x),
    y1: Math.max(a.y, b.y),
  };
}
