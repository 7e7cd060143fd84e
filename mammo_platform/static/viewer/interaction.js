// Mouse, wheel and keyboard for the viewer. Pan and zoom go through geometry.js so that one state drives every
// synchronised view; the window goes to Cornerstone as a VOI range (stage.js).
//   primary button: the chosen mode (W/L, pan, zoom, magnifier, mark)   middle: pan   right: zoom   wheel: zoom

import { clampZoom, panBy, zoomAbout } from "./geometry.js";
import { actionFor, isTyping } from "./keyboard.js";
import { Magnifier } from "./magnifier.js";
import { canvasPointOf, imagePointOf, rulerText } from "./overlays.js";
import { windowOf } from "./stage.js";

const WHEEL_STEP = 1.15;
const CURSOR_STEP = 8; // CSS pixels per arrow key press; 1 with Shift
// Window/level drag, scaled to the window on screen (not to the image's whole value range, which a 16-bit mammogram's
// narrow tissue window is a small part of): 150 px to the right doubles the width, 150 px down moves the centre by
// half the width (a mid-grey goes half-way to black).
const WIDTH_DOUBLING_PIXELS = 150;
const CENTRE_PIXELS_PER_WIDTH = 300;

export function installInteraction(viewer) {
  const { grid, stage } = viewer;
  const magnifier = new Magnifier(stage);

  const viewOf = (target) => {
    const container = target.closest && target.closest(".mv-cell");
    if (!container) return null;
    const view = stage.views.find((v) => container.contains(v.element));
    return view ? { view, container } : null;
  };

  const localPoint = (view, event) => {
    const rect = view.element.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  };

  const zoomState = (view, point, zoom) => zoomAbout(view.state, stage.geometry(view), point, clampZoom(zoom));

  let frame = 0;
  let pending = null;
  const schedule = (view, state) => {
    pending = { view, state };
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (pending) stage.setState(pending.view, pending.state);
      pending = null;
    });
  };

  grid.addEventListener("contextmenu", (event) => event.preventDefault());

  // Capture phase, and the events stop here: Cornerstone's own listeners on the viewport element have nothing to do.
  grid.addEventListener(
    "pointerdown",
    (event) => {
      const hit = viewOf(event.target);
      if (!hit) return;
      const { view, container } = hit;
      container.focus({ preventScroll: true });
      const primary = event.button === 0;
      let kind = null;
      if (event.button === 1 || (primary && stage.mode === "pan")) kind = "pan";
      else if (event.button === 2 || (primary && stage.mode === "zoom")) kind = "zoom";
      else if (primary) kind = stage.mode; // "wl" | "magnify" | "mark" | "measure"
      if (!kind) return;
      event.preventDefault();
      event.stopPropagation();
      const point = localPoint(view, event);
      if (kind === "mark") {
        placeMark(view, container, point);
        return;
      }
      if (kind === "magnify") magnifier.open(view, container, point);
      const start = { x: event.clientX, y: event.clientY, state: { ...view.state }, point, window: windowOf(view.viewport) };
      const from = kind === "measure" ? imagePointOf(view.viewport, view.image, point) : null;
      if (kind === "measure" && !from) return;
      container.setPointerCapture(event.pointerId);
      const move = (moveEvent) => {
        const dx = moveEvent.clientX - start.x;
        const dy = moveEvent.clientY - start.y;
        const cell = stage.geometry(view);
        if (kind === "pan") schedule(view, panBy(start.state, cell, dx, dy));
        else if (kind === "zoom") {
          schedule(view, zoomAbout(start.state, cell, start.point, clampZoom(start.state.zoom * Math.exp(-dy / 150))));
        } else if (kind === "magnify") magnifier.follow(localPoint(view, moveEvent));
        else if (kind === "measure") {
          const to = imagePointOf(view.viewport, view.image, localPoint(view, moveEvent));
          if (to) viewer.measure(view.image, from, to, rulerText(view.image, from, to));
        } else if (kind === "wl") {
          // Right: wider window (less contrast); down: higher centre (darker), as on most workstations.
          const width = start.window.windowWidth;
          stage.dragWindow(view, {
            windowWidth: Math.max(1, width * 2 ** (dx / WIDTH_DOUBLING_PIXELS)),
            windowCenter: start.window.windowCenter + (dy * width) / CENTRE_PIXELS_PER_WIDTH,
          });
        }
      };
      const end = () => {
        if (kind === "magnify") magnifier.close();
        container.removeEventListener("pointermove", move);
        container.removeEventListener("pointerup", end);
        container.removeEventListener("pointercancel", end);
      };
      container.addEventListener("pointermove", move);
      container.addEventListener("pointerup", end);
      container.addEventListener("pointercancel", end);
    },
    { capture: true },
  );

  grid.addEventListener(
    "wheel",
    (event) => {
      const hit = viewOf(event.target);
      if (!hit) return;
      event.preventDefault();
      event.stopPropagation();
      const base = pending && pending.view === hit.view ? pending.state : hit.view.state;
      const factor = event.deltaY < 0 ? WHEEL_STEP : 1 / WHEEL_STEP;
      schedule(hit.view, zoomAbout(base, stage.geometry(hit.view), localPoint(hit.view, event), clampZoom(base.zoom * factor)));
    },
    { capture: true, passive: false },
  );

  function placeMark(view, container, point) {
    const imagePoint = imagePointOf(view.viewport, view.image, point);
    if (!imagePoint) return;
    if (!viewer.marks.canMark(view.image)) {
      viewer.say(view.cell.role === "prior" ? "Marks go on the current exam, not on the prior." : "Marks cannot be placed here.");
      return;
    }
    viewer.marks.place(view.image, imagePoint);
    viewer.cursor = { container, ...imagePoint };
    viewer.drawOverlays();
  }

  // Keyboard marking: arrows move a cursor over the focused view (in screen directions, whatever the flips).
  function moveCursor(hit, key, fine) {
    const { view, container } = hit;
    if (!viewer.cursor || viewer.cursor.container !== container) {
      const draft = viewer.marks.draft(view.image.laterality);
      const start = draft && draft.image.id === view.image.id ? draft : { row: view.image.rows / 2, column: view.image.columns / 2 };
      viewer.cursor = { container, row: start.row, column: start.column };
    } else {
      const step = fine ? 1 : CURSOR_STEP;
      const at = canvasPointOf(view.viewport, viewer.cursor);
      const delta = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[key];
      const next = imagePointOf(view.viewport, view.image, { x: at.x + delta[0], y: at.y + delta[1] });
      if (next) Object.assign(viewer.cursor, next);
    }
    viewer.drawOverlays();
  }

  document.addEventListener("keydown", (event) => {
    if (isTyping(event.target, event.key)) return;
    const dialog = viewer.root.querySelector("dialog.mv-help");
    if (dialog && dialog.open && event.key !== "Escape" && actionFor(event) !== "help") return;
    const action = actionFor(event);
    if (!action) return;
    const hit = viewOf(document.activeElement || document.body);
    if (action === "cursor" || action === "mark:place") {
      if (!hit || stage.mode !== "mark") return;
      event.preventDefault();
      if (action === "cursor") moveCursor(hit, event.key, event.shiftKey);
      else if (viewer.cursor && viewer.cursor.container === hit.container) placeMark(hit.view, hit.container, canvasPointOf(hit.view.viewport, viewer.cursor));
      else moveCursor(hit, "", false);
      return;
    }
    if (action === "mark:clear") {
      if (hit) viewer.marks.clear(hit.view.image.laterality);
      return;
    }
    event.preventDefault();
    viewer.act(action, hit ? hit.view : null);
  });

  viewer.root.querySelectorAll("[data-action]").forEach((button) => {
    button.addEventListener("click", () => viewer.act(button.dataset.action));
  });
  const presets = viewer.root.querySelector("[data-control='preset']");
  if (presets) presets.addEventListener("change", () => viewer.act(`preset:${presets.value}`));
  const opacity = viewer.root.querySelector("[data-control='opacity']");
  if (opacity) {
    opacity.addEventListener("input", () => {
      viewer.ai.opacity = Number(opacity.value) / 100;
      viewer.updateToolbar();
    });
  }

  return { zoomState };
}
