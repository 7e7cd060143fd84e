// The hanging protocol: which image goes in which cell, and how each image is turned so that the breasts hang back
// to back (the right breast on the viewer's left with its chest wall against the middle, nipples pointing outwards).
// Pure functions, no DOM: main.js renders the cells, stage.js draws them.

// Layouts: rows of slots. A slot is laterality + view; "*" rows hang every image of the exam (extra views too).
export const LAYOUTS = {
  four: { key: "1", label: "Four views", rows: [["RCC", "LCC"], ["RMLO", "LMLO"]] },
  cc: { key: "2", label: "CC pair", rows: [["RCC", "LCC"]] },
  mlo: { key: "3", label: "MLO pair", rows: [["RMLO", "LMLO"]] },
  rcc: { key: "4", label: "Right CC", rows: [["RCC"]] },
  lcc: { key: "5", label: "Left CC", rows: [["LCC"]] },
  rmlo: { key: "6", label: "Right MLO", rows: [["RMLO"]] },
  lmlo: { key: "7", label: "Left MLO", rows: [["LMLO"]] },
  all: { key: "0", label: "All images", rows: "*" },
};

const SIDE_NAMES = { R: "Right", L: "Left" };

export function slotOf(image) {
  return `${image.laterality}${image.view}`;
}

// The chest wall hangs against the middle: right breast -> right edge of its cell, left breast -> left edge.
export function innerEdge(laterality) {
  return laterality === "R" ? "right" : "left";
}

// study -> { slot: image } (the most recent image when a view was taken twice) and the images by slot.
function imagesBySlot(study) {
  const slots = new Map();
  for (const image of study.images) {
    const slot = slotOf(image);
    const taken = slots.get(slot);
    if (!taken || image.id > taken.id) slots.set(slot, image);
  }
  return slots;
}

function cellFor({ slot, study, role }) {
  const laterality = slot[0];
  const view = slot.slice(1);
  const image = study ? imagesBySlot(study).get(slot) || null : null;
  const when = study && study.date ? ` · ${study.date}` : "";
  return {
    key: `${role}-${slot}`,
    slot,
    role,
    laterality,
    view,
    inner: innerEdge(laterality),
    image,
    studyId: study ? study.id : null,
    label: `${laterality}${view} · ${role === "prior" ? "prior" : "current"}${when}`,
    missing: image
      ? ""
      : `${SIDE_NAMES[laterality] || laterality} ${view}: ${study ? "not in this exam" : "no earlier exam"}`,
  };
}

// The cells of a layout as rows. With `compare`, every current cell gets the prior exam's image of the same view
// beside it, on its outer side (so the current pair still meets in the middle).
export function hang({ layout, current, prior = null, compare = false }) {
  const spec = LAYOUTS[layout] || LAYOUTS.four;
  let rows;
  if (spec.rows === "*") {
    const ordered = [...current.images].sort(
      (a, b) => (a.laterality === b.laterality ? 0 : a.laterality === "R" ? -1 : 1) || a.view.localeCompare(b.view) || a.id - b.id,
    );
    rows = [ordered.map((image) => ({ ...cellFor({ slot: slotOf(image), study: current, role: "current" }), image, key: `current-${image.id}` }))];
  } else {
    rows = spec.rows.map((slots) => slots.map((slot) => cellFor({ slot, study: current, role: "current" })));
  }
  if (compare) {
    rows = rows.map((row) =>
      row.flatMap((cell) => {
        const before = cellFor({ slot: cell.slot, study: prior, role: "prior" });
        return cell.inner === "right" ? [before, cell] : [cell, before];
      }),
    );
  }
  return { rows, columns: Math.max(...rows.map((row) => row.length)) };
}

// PatientOrientation (0020,0020): [direction of the rows (rightwards), direction of the columns (downwards)],
// e.g. ["A", "R"] or "P\\FL". Returns two upper-case strings, or null when absent or malformed.
export function parsePatientOrientation(value) {
  const parts = Array.isArray(value) ? value : typeof value === "string" ? value.split("\\") : [];
  if (parts.length !== 2) return null;
  const [rowDirection, columnDirection] = parts.map((p) => String(p).trim().toUpperCase());
  const valid = /^[APLRHF]{1,3}$/;
  return valid.test(rowDirection) && valid.test(columnDirection) ? [rowDirection, columnDirection] : null;
}

// What should point down the screen: the feet for MLO-like views (PS3.3 / IHE Mammography: RMLO P\F, LMLO A\F),
// the patient's other side (medial) for CC views (RCC P\L, LCC A\R), so the lateral side is at the top.
function downwardDirection(image) {
  if (image.view.includes("CC")) return image.laterality === "R" ? "L" : "R";
  if (/MLO|ML|LM/.test(image.view)) return "F";
  return null;
}

const OPPOSITE = { F: "H", H: "F", L: "R", R: "L", A: "P", P: "A" };

// How to flip `image` so that its chest wall lies against `inner`, decided by the data: the image's
// PatientOrientation when it has one, otherwise the chest-wall side measured on its pixels (measuredChestWall,
// "left" | "right" | null, from pixels.js). Never from the laterality alone: images are stored either way round.
export function displayFlips(image, inner, measuredChestWall = null) {
  const orientation = parsePatientOrientation(image.patientOrientation);
  let storedChestWall = null;
  let source = "none";
  let vertical = false;
  if (orientation) {
    const [rowDirection, columnDirection] = orientation;
    // Rightwards towards posterior means the chest wall is on the right of the stored image.
    if (rowDirection.includes("P") && !rowDirection.includes("A")) storedChestWall = "right";
    if (rowDirection.includes("A") && !rowDirection.includes("P")) storedChestWall = "left";
    const down = downwardDirection(image);
    if (down && columnDirection.includes(OPPOSITE[down]) && !columnDirection.includes(down)) vertical = true;
    if (storedChestWall) source = "PatientOrientation";
  }
  if (!storedChestWall && measuredChestWall) {
    storedChestWall = measuredChestWall;
    source = "pixels";
  }
  return { horizontal: storedChestWall !== null && storedChestWall !== inner, vertical, source, storedChestWall };
}

// The chest-wall side of a stored image from its pixels: the breast touches the chest-wall edge of the detector, so
// that edge carries tissue over most of its height while the opposite edge is mostly background. Compares the mean
// displayed brightness of the outer 3 % of columns on each side over the middle 80 % of rows; null if unclear.
export function measureChestWall(pixels, rows, columns, { monochrome1 = false } = {}) {
  const strip = Math.max(1, Math.round(columns * 0.03));
  const first = Math.floor(rows * 0.1);
  const last = Math.ceil(rows * 0.9);
  const step = Math.max(1, Math.floor((last - first) / 400)); // 400 rows are plenty for a mean
  let left = 0;
  let right = 0;
  let count = 0;
  for (let row = first; row < last; row += step) {
    const offset = row * columns;
    for (let c = 0; c < strip; c++) {
      left += pixels[offset + c];
      right += pixels[offset + columns - 1 - c];
    }
    count += strip;
  }
  if (!count) return null;
  left /= count;
  right /= count;
  if (monochrome1) [left, right] = [right, left];
  const spread = Math.abs(left - right);
  const scale = Math.max(Math.abs(left), Math.abs(right), 1);
  if (spread < 0.1 * scale) return null; // both sides alike: no reliable answer
  return left > right ? "left" : "right";
}
