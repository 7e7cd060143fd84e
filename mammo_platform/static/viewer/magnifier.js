// The magnifying glass: a round Cornerstone3D viewport of the same image that follows the pointer and shows the
// original pixels under it at least 1:1 on the screen (twice the view's own scale when that is already closer), with
// the view's flips, window and invert. (Cornerstone's MagnifyTool is not used: it fails in CPU rendering mode.)

import { Enums } from "../vendor/cornerstone3d/cornerstone3d.min.js";
import { imageIdOf } from "./pixels.js";
import { drawnBox } from "./stage.js";

const VIEWPORT_ID = "mammo-magnifier";

export class Magnifier {
  constructor(stage) {
    this.stage = stage;
    this.session = null;
  }

  open(view, container, point) {
    this.close();
    const element = document.createElement("div");
    element.className = "mv-magnifier";
    container.append(element);
    const session = { view, element, viewport: null, ready: false, point };
    this.session = session;
    this.place(point);
    this.stage.engine.enableElement({ viewportId: VIEWPORT_ID, type: Enums.ViewportType.STACK, element });
    session.viewport = this.stage.engine.getViewport(VIEWPORT_ID);
    session.viewport.setStack([imageIdOf(view.image)]).then(() => {
      if (this.session !== session) return;
      const { voiRange, invert } = view.viewport.getProperties();
      session.viewport.setCamera({ flipHorizontal: view.flips.horizontal, flipVertical: view.flips.vertical });
      session.viewport.setProperties({ voiRange, invert }, true);
      session.ready = true;
      this.follow(session.point);
    });
  }

  place(point) {
    const { element } = this.session;
    element.style.left = `${point.x - element.offsetWidth / 2}px`;
    element.style.top = `${point.y - element.offsetHeight / 2}px`;
  }

  // point: CSS pixels in the magnified view's cell.
  follow(point) {
    const session = this.session;
    if (!session) return;
    session.point = point;
    this.place(point);
    if (!session.ready) return;
    const { view, viewport, element } = session;
    const world = view.viewport.canvasToWorld([point.x, point.y]);
    const viewScale = drawnBox(view.viewport, view.image).width / view.image.columns;
    const scale = Math.max(2 * viewScale, 1 / (window.devicePixelRatio || 1)); // CSS pixels per image pixel
    const camera = viewport.getCamera();
    const focalPoint = [world[0], world[1], camera.focalPoint[2]];
    const position = camera.position.map((value, axis) => value - camera.focalPoint[axis] + focalPoint[axis]);
    viewport.setCamera({ focalPoint, position, parallelScale: element.clientHeight / (2 * scale) });
    element.dataset.scale = scale.toFixed(4);
    viewport.render();
  }

  close() {
    if (!this.session) return;
    this.stage.engine.disableElement(VIEWPORT_ID);
    this.session.element.remove();
    this.session = null;
  }
}
