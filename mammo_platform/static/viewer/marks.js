// The reader's suspicious-location marks, one per breast, kept in the read form's hidden fields
// (<side>-mark_image, <side>-mark_row, <side>-mark_column) in ORIGINAL image pixel coordinates (continuous: column 0
// is the left edge of the stored image, `columns` its right edge), whatever the zoom, pan, flip or window. Marks of
// other reads (for the arbitrator) come from the viewer configuration and are only drawn.

const SIDE_NAMES = { R: "Right", L: "Left" };

export class MarkBook {
  // form: the read form (or null: nothing can be marked); images: the current exam's images; readMarks: marks of
  // reads the user may see ({ image, row, column, label, title }).
  constructor({ form, images, readMarks = [], onChange = () => {} }) {
    this.form = form;
    this.images = new Map(images.map((image) => [image.id, image]));
    this.readMarks = readMarks;
    this.onChange = onChange;
    if (form) {
      form.querySelectorAll("button.clear-mark[data-side]").forEach((button) => {
        button.addEventListener("click", () => this.clear(button.dataset.side));
      });
    }
    this.updateStatus();
  }

  fields(side) {
    if (!this.form) return null;
    const image = this.form.querySelector(`input[name="${side}-mark_image"]`);
    if (!image) return null;
    return {
      image,
      row: this.form.querySelector(`input[name="${side}-mark_row"]`),
      column: this.form.querySelector(`input[name="${side}-mark_column"]`),
      status: this.form.querySelector(`.mark-status[data-side="${side}"]`),
    };
  }

  canMark(image) {
    return Boolean(image && this.images.has(image.id) && this.fields(image.laterality));
  }

  draft(side) {
    const f = this.fields(side);
    if (!f || f.image.value === "" || f.row.value === "" || f.column.value === "") return null;
    const image = this.images.get(Number(f.image.value));
    if (!image) return null;
    return { image, row: Number(f.row.value), column: Number(f.column.value) };
  }

  // Place the mark of the image's breast at a point in original pixels. Rounded down to a tenth of a pixel:
  // rounding up could land on the far edge, outside the image.
  place(image, point) {
    if (!this.canMark(image)) return false;
    const f = this.fields(image.laterality);
    const clamp = (value, size) => Math.min(Math.max(value, 0), size - 0.1);
    f.image.value = String(image.id);
    f.row.value = String(Math.floor(clamp(point.row, image.rows) * 10) / 10);
    f.column.value = String(Math.floor(clamp(point.column, image.columns) * 10) / 10);
    this.updateStatus();
    this.onChange();
    return true;
  }

  clear(side) {
    const f = this.fields(side);
    if (!f) return;
    for (const input of [f.image, f.row, f.column]) input.value = "";
    this.updateStatus();
    this.onChange();
  }

  updateStatus() {
    for (const side of Object.keys(SIDE_NAMES)) {
      const f = this.fields(side);
      if (!f || !f.status) continue;
      const mark = this.draft(side);
      f.status.textContent = mark
        ? `${SIDE_NAMES[side]} ${mark.image.view}, row ${Math.round(mark.row)}, column ${Math.round(mark.column)}.`
        : `No mark. Choose the mark tool (M) and click on a ${SIDE_NAMES[side].toLowerCase()} image, or use the arrow keys and Enter.`;
    }
  }

  // Everything to draw on one image: the reader's draft mark and the visible reads' marks.
  marksOn(image) {
    const marks = this.readMarks
      .filter((mark) => mark.image === image.id)
      .map((mark) => ({ ...mark, kind: "read" }));
    const draft = this.draft(image.laterality);
    if (draft && draft.image.id === image.id) {
      marks.push({ row: draft.row, column: draft.column, label: "+", title: "Your mark", kind: "draft" });
    }
    return marks;
  }
}
