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

// Window presets of an image: the DICOM's own windows, then the full range of its values.
export function presetsFor(image) {
  const presets = (image.voi || []).map((voi, index) => ({ label: voi.label || `DICOM window ${index + 1}`, ...voi }));
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
    this.inverted = false;
    this.mode = "wl";
    this.onCamera = onCamera;
    this.onVoi = onVoi;
  }

  geometry(view) {
    const { clientWidth: width, clientHeight: height } = view.element;
    return { width, height, columns: view.image.columns, rows: view.image.rows, inner: view.cell.inner };
  }

  // Replace the hung views: views = [{ cell, element, image, flips }], element being the cell's empty viewport div.
  async show(views, state = DEFAULT_STATE) {
    this.tearDown();
    this.views = views.filter((view) => view.image);
    this.views.forEach((view, index) => {
      view.viewportId = `mammo-view-${index}`;
    });
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
    setCameraToBox(view.viewport, boxOf(view.state, cell), cell);
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
    for (const view of this.views) this.applyPreset(view);
    this.render();
  }

  // A window dragged by hand on `source`: the views of the same exam take it too (one acquisition, one value
  // scale); a prior keeps its own.
  dragWindow(source, window) {
    for (const view of this.views) {
      if (view.cell.studyId === source.cell.studyId) this.setWindow(view, window);
    }
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
