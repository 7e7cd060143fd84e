// What is drawn over the images: the AI heatmap (an <img> of the platform's overlay PNG, stretched over the whole
// image by a CSS matrix) and the marks (an SVG layer). Both are placed through Cornerstone's own worldToCanvas, so
// they follow every zoom, pan and flip exactly as the pixels do. No inline style attributes: positions are set
// through the CSSOM (element.style), which a strict Content-Security-Policy allows.

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

// Continuous original-pixel coordinates (0 = top/left edge of the stored image) -> CSS pixels in the cell.
export function canvasPointOf(viewport, { row, column }) {
  const [x, y] = viewport.worldToCanvas([column - 0.5, row - 0.5, 0]);
  return { x, y };
}

// CSS pixels in the cell -> continuous original-pixel coordinates, or null outside the image.
export function imagePointOf(viewport, image, { x, y }) {
  const world = viewport.canvasToWorld([x, y]);
  const column = world[0] + 0.5;
  const row = world[1] + 0.5;
  if (!(column >= 0 && column < image.columns && row >= 0 && row < image.rows)) return null;
  return { row, column };
}

// The heatmap covers the whole image: its corners go where the image's corners are drawn.
export function placeHeatmap(heatmap, viewport, image) {
  if (!heatmap || !heatmap.naturalWidth) return;
  const origin = canvasPointOf(viewport, { row: 0, column: 0 });
  const right = canvasPointOf(viewport, { row: 0, column: image.columns });
  const down = canvasPointOf(viewport, { row: image.rows, column: 0 });
  const w = heatmap.naturalWidth;
  const h = heatmap.naturalHeight;
  const matrix = [
    (right.x - origin.x) / w,
    (right.y - origin.y) / w,
    (down.x - origin.x) / h,
    (down.y - origin.y) / h,
    origin.x,
    origin.y,
  ];
  heatmap.style.transform = `matrix(${matrix.map((value) => value.toFixed(6)).join(",")})`;
}

// A distance measured on the image: a line between two original-pixel points, labelled with its length.
export function drawRuler(svg, viewport, ruler) {
  const a = canvasPointOf(viewport, ruler.from);
  const b = canvasPointOf(viewport, ruler.to);
  const group = svgElement("g", { class: "mv-ruler", "data-length": ruler.text });
  const line = svgElement("line", { x1: a.x.toFixed(1), y1: a.y.toFixed(1), x2: b.x.toFixed(1), y2: b.y.toFixed(1) });
  const ends = [a, b].map((p) => svgElement("circle", { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: 3 }));
  const label = svgElement("text", { x: ((a.x + b.x) / 2 + 8).toFixed(1), y: ((a.y + b.y) / 2 - 8).toFixed(1) });
  label.textContent = ruler.text;
  group.append(line, ...ends, label);
  svg.append(group);
}

// The length of a ruler: in mm with the image's pixel spacing ([row, column] mm per pixel), else in pixels, said so.
export function rulerText(image, from, to) {
  const rows = to.row - from.row;
  const columns = to.column - from.column;
  const spacing = image.pixelSpacing;
  if (spacing && spacing.length === 2) {
    return `${Math.hypot(rows * spacing[0], columns * spacing[1]).toFixed(1)} mm`;
  }
  return `${Math.round(Math.hypot(rows, columns))} px (no pixel spacing in the file)`;
}

// marks: [{ row, column, label, title, kind: "draft" | "read" }]; cursor: { row, column } or null (keyboard placing).
export function drawMarks(svg, viewport, marks, cursor) {
  svg.replaceChildren();
  for (const mark of marks) {
    const { x, y } = canvasPointOf(viewport, mark);
    const group = svgElement("g", {
      class: `mv-mark mv-mark-${mark.kind}`,
      transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`,
      "data-row": mark.row.toFixed(1),
      "data-column": mark.column.toFixed(1),
    });
    const title = svgElement("title");
    title.textContent = mark.title;
    group.append(
      title,
      svgElement("circle", { r: 11 }),
      svgElement("path", { d: "M-18 0H-6M6 0H18M0 -18V-6M0 6V18" }),
    );
    const label = svgElement("text", { x: 14, y: -14 });
    label.textContent = mark.label;
    group.append(label);
    svg.append(group);
  }
  if (cursor) {
    const { x, y } = canvasPointOf(viewport, cursor);
    svg.append(
      svgElement("path", {
        class: "mv-cursor",
        d: `M${x - 24} ${y}H${x - 4}M${x + 4} ${y}H${x + 24}M${x} ${y - 24}V${y - 4}M${x} ${y + 4}V${y + 24}`,
      }),
    );
  }
}
