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
