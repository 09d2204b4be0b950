// The caller's analyses, newest first, a page at a time: open one, or delete it after asking.

import { byId, el, percent } from "./dom.js";
import { renderAnalysis } from "./result.js";

const PAGE_SIZE = 10;

export class History {
  constructor(api, showError) {
    this.api = api;
    this.showError = showError;
    this.list = byId("history-list");
    this.more = byId("history-more");
    this.empty = byId("history-empty");
    this.detail = byId("history-detail");
    this.dialog = byId("confirm-delete");
    this.cursor = null;
    this.thumbnails = [];
    this.more.addEventListener("click", () => this.load().catch(showError));
  }

  async reload() {
    for (const url of this.thumbnails) URL.revokeObjectURL(url);
    this.thumbnails = [];
    this.list.replaceChildren();
    this.cursor = null;
    this.detail.hidden = true;
    await this.load();
  }

  async load() {
    const page = await this.api.list(PAGE_SIZE, this.cursor);
    this.list.append(...page.items.map((analysis) => this.row(analysis)));
    this.cursor = page.next_cursor;
    this.more.hidden = !this.cursor;
    this.empty.hidden = this.list.children.length > 0;
  }

  row(analysis) {
    const thumbnail = el("img", { class: "thumbnail", alt: "" });
    this.api.blobUrl(analysis.image.url).then((url) => {
      this.thumbnails.push(url);
      thumbnail.src = url;
    }, () => thumbnail.classList.add("missing"));
    const open = el("button", { type: "button", class: "open", text: "Open" });
    const remove = el("button", { type: "button", class: "delete danger quiet", text: "Delete" });
    const row = el("li", { class: "history-item", "data-id": analysis.id },
      thumbnail,
      el("div", { class: "summary" },
        el("strong", { class: `label-${analysis.label}`, text: analysis.label }),
        el("span", { text: ` · P(malignant) ${percent(analysis.probabilities.malignant)}` }),
        el("div", { class: "hint", text: `${analysis.modality}, ${new Date(analysis.created_at).toLocaleString()}` }),
      ),
      el("div", { class: "actions" }, open, remove),
    );
    open.addEventListener("click", () => this.open(analysis).catch(this.showError));
    remove.addEventListener("click", () => this.remove(analysis, row).catch(this.showError));
    return row;
  }

  async open(analysis) {
    await renderAnalysis(this.detail, analysis, this.api);
    this.detail.scrollIntoView({ block: "start" });
  }

  async remove(analysis, row) {
    if (!(await this.confirm())) return;
    await this.api.remove(analysis.id);
    row.remove();
    if (this.detail.dataset.analysisId === analysis.id) this.detail.hidden = true;
    this.empty.hidden = this.list.children.length > 0;
  }

  confirm() {
    return new Promise((resolve) => {
      const answer = (yes) => {
        this.dialog.close();
        resolve(yes);
      };
      byId("confirm-delete-yes").onclick = () => answer(true);
      byId("confirm-delete-cancel").onclick = () => answer(false);
      this.dialog.oncancel = () => resolve(false); // Escape
      this.dialog.showModal();
    });
  }
}
