// Cornerstone3D for the reading viewer: one rendering engine, one Stack viewport per cell, the camera of each
// viewport set from the layout state of geometry.js, and the window (VOI range), invert and presets, synchronised
// within an exam. Cornerstone draws; this module only tells it what to draw.

import { Enums, RenderingEngine, getRenderingCapabilities, init, utilities } from "../vendor/cornerstone3d/cornerstone3d.min.js";
import { DEFAULT_STATE, boxOf, oneToOneZoom } from "./geometry.js";
import { fullRangeWindow, imageIdOf } from "./pixels.js";

const ENGINE_ID = "mammo-reading";

// Cornerstone draws with WebGL when it can. On a software rasteriser (no GPU: SwiftShader, llvmpipe) its CPU path
// draws a four-view exam of real-size images about four times faster (measured: 0.6 s against 2.6 s in chromium
// here), so it is used there; `rendering` ("auto" | "cpu" | "gpu") overrides the choice.
export async function startCornerstone(rendering = "auto") {
  const capabilities = getRenderingCapabilities();
  const cpu = rendering === "cpu" || (rendering !== "gpu" && (!capabilities.webgl || capabilities.softwareRasterizer));
  await init({ rendering: { useCPURendering: cpu } });
  return { cpu, renderer: capabilities.renderer || "" };
}

// The camera that draws the image in `box` (CSS pixels of the cell). World coordinates are (column, row) of pixel
// centres (pixels.js gives every image a 1 x 1 spacing), so the image spans -0.5 .. columns - 0.5.
function setCameraToBox(viewport, box, cell) {
  const camera = viewport.getCamera();
  const scale = box.width / cell.columns; // CSS pixels per image pixel
  const towardsX = camera.flipHorizontal ? -1 : 1;
  const towardsY = camera.flipVertical ? -1 : 1;
  const centre = [(cell.columns - 1) / 2, (cell.rows - 1) / 2];
  const dx = box.left + box.width / 2 - cell.width / 2;
  const dy = box.top + box.height / 2 - cell.height / 2;
  const focalPoint = [centre[0] - (towardsX * dx) / scale, centre[1] - (towardsY * dy) / scale, camera.focalPoint[2]];
  const position = camera.position.map((value, axis) => value - camera.focalPoint[axis] + focalPoint[axis]);
  viewport.setCamera({ focalPoint, position, parallelScale: cell.height / (2 * scale) });
}

// The part of each displayed image its view is fitted to (display pixels: { left, top, width, height }): the breast's
// box (breast.js), turned as the image is displayed and reaching to the chest-wall edge, so that the breast, not the
// whole detector, fills its cell. The views of one exam get frames of one size (the largest of their boxes): they
// keep one scale, as a reader comparing left with right expects. Without a measured breast: the whole image.
function assignFrames(views) {
  const boxes = new Map();
  for (const view of views) {
    const { rows, columns } = view.image;
    const stored = (view.image.breast && view.image.breast.box) || { left: 0, top: 0, right: columns, bottom: rows };
    let { left, right, top, bottom } = stored;
    if (view.flips.horizontal) [left, right] = [columns - stored.right, columns - stored.left];
    if (view.flips.vertical) [top, bottom] = [rows - stored.bottom, rows - stored.top];
    if (view.cell.inner === "right") right = columns;
    else left = 0;
    boxes.set(view, { left, right, top, bottom });
  }
  const sizes = new Map();
  for (const [view, box] of boxes) {
    const size = sizes.get(view.cell.studyId) || { width: 0, height: 0 };
    size.width = Math.max(size.width, box.right - box.left);
    size.height = Math.max(size.height, box.bottom - box.top);
    sizes.set(view.cell.studyId, size);
  }
  const clamp = (value, low, high) => Math.min(Math.max(value, low), high);
  for (const [view, box] of boxes) {
    const { rows, columns } = view.image;
    const size = sizes.get(view.cell.studyId);
    const width = Math.min(columns, size.width);
    const height = Math.min(rows, size.height);
    // A frame wider than this breast's box grows away from the chest wall; a taller one, evenly up and down.
    const left = clamp(view.cell.inner === "right" ? box.right - width : box.left, 0, columns - width);
    const top = clamp((box.top + box.bottom - height) / 2, 0, rows - height);
    view.frame = { left, top, width, height };
  }
}

// Where Cornerstone actually draws the image (CSS pixels of the cell), read back through its own transform.
export function drawnBox(viewport, image) {
  const corners = [
    [-0.5, -0.5],
    [image.columns - 0.5, image.rows - 0.5],
  ].map(([x, y]) => viewport.worldToCanvas([x, y, 0]));
  const left = Math.min(corners[0][0], corners[1][0]);
  const top = Math.min(corners[0][1], corners[1][1]);
  return { left, top, width: Math.abs(corners[1][0] - corners[0][0]), height: Math.abs(corners[1][1] - corners[0][1]) };
}

// Window presets of an image: the DICOM's own windows, then one computed from the breast's values (its tissue,
// not the background: breast.js), then the full range of its values. The first is the default.
export function presetsFor(image) {
  const presets = (image.voi || []).map((voi, index) => ({ label: voi.label || `DICOM window ${index + 1}`, ...voi }));
  if (image.breast) presets.push({ label: "Breast tissue", ...fullRangeWindow(image, image.breast.low, image.breast.high) });
  if (image.range) presets.push({ label: "Full range", ...fullRangeWindow(image, image.range.smallest, image.range.largest) });
  return presets;
}

export function windowOf(viewport) {
  const { voiRange } = viewport.getProperties();
  return utilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper); // { windowWidth, windowCenter }
}

export class Stage {
  constructor({ onCamera, onVoi }) {
    this.engine = new RenderingEngine(ENGINE_ID);
    this.views = []; // { cell, element, image, flips, viewportId, viewport, state }
    this.synchronised = true;
    this.presetIndex = 0;
    this.customWindow = false; // a window dragged by hand is on (no preset)
    this.inverted = false;
    this.mode = "wl";
    this.onCamera = onCamera;
    this.onVoi = onVoi;
  }

  // The cell and the frame the layout state is about (geometry.js): zoom 1 fits the frame (the breast) to the cell.
  geometry(view) {
    const { clientWidth: width, clientHeight: height } = view.element;
    const frame = view.frame || { width: view.image.columns, height: view.image.rows };
    return { width, height, columns: frame.width, rows: frame.height, inner: view.cell.inner };
  }

  // Replace the hung views: views = [{ cell, element, image, flips }], element being the cell's empty viewport div.
  async show(views, state = DEFAULT_STATE) {
    this.tearDown();
    this.views = views.filter((view) => view.image);
    this.views.forEach((view, index) => {
      view.viewportId = `mammo-view-${index}`;
    });
    assignFrames(this.views);
    this.engine.setViewports(
      this.views.map((view) => ({ viewportId: view.viewportId, type: Enums.ViewportType.STACK, element: view.element })),
    );
    await Promise.all(
      this.views.map(async (view) => {
        view.viewport = this.engine.getViewport(view.viewportId);
        await view.viewport.setStack([imageIdOf(view.image)]);
        view.viewport.setCamera({ flipHorizontal: view.flips.horizontal, flipVertical: view.flips.vertical });
        view.state = { ...state };
        this.applyPreset(view);
      }),
    );
    this.customWindow = false; // the views open on the chosen preset
    for (const view of this.views) this.applyState(view, view.state);
    this.render();
  }

  tearDown() {
    for (const view of this.views) this.engine.disableElement(view.viewportId);
    this.views = [];
  }

  applyState(view, state) {
    view.state = { ...state };
    const cell = this.geometry(view);
    if (!cell.width || !cell.height) return;
    // The state places the frame; the camera is set for the whole image around it.
    const frameBox = boxOf(view.state, cell);
    const scale = frameBox.width / cell.columns;
    const frame = view.frame || { left: 0, top: 0 };
    const imageBox = {
      left: frameBox.left - frame.left * scale,
      top: frameBox.top - frame.top * scale,
      width: view.image.columns * scale,
      height: view.image.rows * scale,
    };
    setCameraToBox(view.viewport, imageBox, { ...cell, columns: view.image.columns, rows: view.image.rows });
  }

  // A new state for `source` (from a pan, a zoom, fit or 1:1): every view follows when synchronised.
  setState(source, state) {
    const targets = this.synchronised ? this.views : [source];
    for (const view of targets) this.applyState(view, state);
    this.render();
  }

  resetViews(state = DEFAULT_STATE) {
    for (const view of this.views) this.applyState(view, state);
    this.render();
  }

  oneToOneZoom(view) {
    return oneToOneZoom(this.geometry(view), window.devicePixelRatio || 1);
  }

  resize() {
    this.engine.resize(true, true);
    for (const view of this.views) this.applyState(view, view.state);
    this.render();
  }

  render() {
    if (!this.views.length) return;
    this.engine.renderViewports(this.views.map((view) => view.viewportId));
    if (this.onCamera) this.onCamera();
  }

  // ----------------------------------------------------------------------------------------------- window

  setWindow(view, { windowCenter, windowWidth }) {
    view.viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(Math.max(1, windowWidth), windowCenter) }, true);
  }

  applyPreset(view) {
    const presets = presetsFor(view.image);
    const preset = presets[Math.min(this.presetIndex, presets.length - 1)];
    if (preset) this.setWindow(view, { windowCenter: preset.center, windowWidth: preset.width });
    view.viewport.setProperties({ invert: (view.image.photometric === "MONOCHROME1") !== this.inverted }, true);
  }

  setPreset(index) {
    this.presetIndex = index;
    this.customWindow = false;
    for (const view of this.views) this.applyPreset(view);
    this.render();
  }

  // A window dragged by hand on `source`: the views of the same exam take it too (one acquisition, one value
  // scale); a prior keeps its own.
  dragWindow(source, window) {
    for (const view of this.views) {
      if (view.cell.studyId === source.cell.studyId) this.setWindow(view, window);
    }
    this.customWindow = true;
    this.render();
    if (this.onVoi) this.onVoi(source);
  }

  // Invert keeps whatever window is on (a preset or one dragged by hand).
  setInverted(inverted) {
    this.inverted = inverted;
    for (const view of this.views) {
      view.viewport.setProperties({ invert: (view.image.photometric === "MONOCHROME1") !== inverted }, true);
    }
    this.render();
  }
}
