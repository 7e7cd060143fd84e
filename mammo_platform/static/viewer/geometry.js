// Where an image sits in its cell, as a small state that means the same thing in every cell of a layout, so that one
// state can be applied to all views (synchronised zoom and pan) and survives a window resize.
//
// A cell: { width, height } in CSS pixels, the image's { columns, rows }, and `inner`: the cell edge the breast's
// chest wall is hung against ("right" for the right breast on the viewer's left, "left" for the left breast).
// A state: { zoom, x, y }. zoom 1 = fit to the cell. x = how far the chest-wall edge of the image has moved away from
// the inner cell edge, y = how far the image has moved down from vertically centred, both in units of the fitted
// image's pixels. Because x is measured from the inner edge outwards, the same state hangs a right and a left breast
// as mirror images: a pan towards the middle in one view is a pan towards the middle in the other.
//
// Pure functions, no DOM and no Cornerstone: unit-testable and the single source of the layout arithmetic.

export const DEFAULT_STATE = Object.freeze({ zoom: 1, x: 0, y: 0 });
export const MIN_ZOOM = 0.25;
export const MAX_ZOOM = 64;

export function fitScale(cell) {
  return Math.min(cell.width / cell.columns, cell.height / cell.rows);
}

// The image's box in the cell (CSS pixels): { left, top, width, height }.
export function boxOf(state, cell) {
  const fit = fitScale(cell);
  const width = state.zoom * fit * cell.columns;
  const height = state.zoom * fit * cell.rows;
  const fromInner = state.x * fit;
  const left = cell.inner === "right" ? cell.width - fromInner - width : fromInner;
  const top = state.y * fit + (cell.height - fit * cell.rows) / 2;
  return { left, top, width, height };
}

// The state that puts the image at `box` in `cell` (the inverse of boxOf).
export function stateOf(box, cell) {
  const fit = fitScale(cell);
  const fromInner = cell.inner === "right" ? cell.width - (box.left + box.width) : box.left;
  return {
    zoom: box.width / (fit * cell.columns),
    x: fromInner / fit,
    y: (box.top - (cell.height - fit * cell.rows) / 2) / fit,
  };
}

export function clampZoom(zoom) {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
}

// Zoom to `zoom` keeping the image point under `point` ({ x, y } in the cell) where it is.
export function zoomAbout(state, cell, point, zoom) {
  const box = boxOf(state, cell);
  const fx = (point.x - box.left) / box.width;
  const fy = (point.y - box.top) / box.height;
  const next = clampZoom(zoom);
  const width = box.width * (next / state.zoom);
  const height = box.height * (next / state.zoom);
  return stateOf({ left: point.x - fx * width, top: point.y - fy * height, width, height }, cell);
}

// Move the image by (dx, dy) CSS pixels on screen.
export function panBy(state, cell, dx, dy) {
  const box = boxOf(state, cell);
  return stateOf({ ...box, left: box.left + dx, top: box.top + dy }, cell);
}

// The zoom at which one image pixel covers one device pixel.
export function oneToOneZoom(cell, devicePixelRatio = 1) {
  return 1 / (fitScale(cell) * devicePixelRatio);
}
