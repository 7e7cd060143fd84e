// The reading viewer: hangs an exam (and its prior) in Cornerstone3D viewports and wires the toolbar, the AI switch,
// the marks and the keyboard. Everything it needs comes from the page: a JSON block (json_script) named by the root
// element's data-config, and the read form's hidden mark fields. See templates/reading/_viewer.html.

import { DEFAULT_STATE } from "./geometry.js";
import { LAYOUTS, displayFlips, hang } from "./hanging.js";
import { installInteraction } from "./interaction.js";
import { fillHelp } from "./keyboard.js";
import { MarkBook } from "./marks.js";
import { drawMarks, drawRuler, placeHeatmap } from "./overlays.js";
import { loadImage, measuredChestWall, preload, registerPixelSource, timings, transferredBytes } from "./pixels.js";
import { Enums } from "../vendor/cornerstone3d/cornerstone3d.min.js";
import { Stage, drawnBox, presetsFor, startCornerstone, windowOf } from "./stage.js";

const OPACITY_STEP = 0.1;

class Viewer {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.grid = root.querySelector(".mv-grid");
    this.message = root.querySelector(".mv-message");
    this.current = config.studies.find((study) => study.role === "current");
    this.prior = config.studies.find((study) => study.role === "prior") || null;
    this.layout = LAYOUTS[config.layout] ? config.layout : "four";
    this.mode = "wl";
    this.compare = false;
    this.ai = { available: false, on: false, locked: false, lockedMessage: "", opacity: 0.5, ...(config.ai || {}) };
    this.cells = []; // { cell, container, element, heatmap, marks, image, flips }
    this.cursor = null; // keyboard marking cursor: { container, row, column }
    this.rulers = new Map(); // image id -> { from, to, text }: one distance measured per image (mode "measure")
    this.stage = new Stage({ onCamera: () => this.drawOverlays(), onVoi: () => this.fillPresets() });
    this.marks = new MarkBook({
      form: document.getElementById(config.formId || "read-form"),
      images: config.markable ? this.current.images : [],
      readMarks: config.marks || [],
      onChange: () => this.drawOverlays(),
    });
  }

  say(text) {
    this.message.textContent = text;
  }

  // ------------------------------------------------------------------------------------------------ hanging

  async hangLayout(layout = this.layout) {
    this.layout = layout;
    const hung = hang({ layout, current: this.current, prior: this.prior, compare: this.compare });
    const images = hung.rows.flat().map((cell) => cell.image).filter(Boolean);
    const results = await Promise.allSettled(images.map(loadImage));
    step(`pixels-${layout}`);
    const failed = new Map();
    results.forEach((result, index) => {
      if (result.status === "rejected") failed.set(images[index].id, result.reason.message || String(result.reason));
    });
    this.buildCells(hung, failed);
    await this.stage.show(
      this.cells.filter((c) => c.image && !failed.has(c.image.id)),
      DEFAULT_STATE,
    );
    this.stage.mode = this.mode;
    this.cursor = null;
    this.drawOverlays();
    this.updateToolbar();
  }

  buildCells(hung, failed) {
    this.grid.replaceChildren();
    this.grid.dataset.columns = String(hung.columns);
    this.grid.dataset.rows = String(hung.rows.length);
    this.cells = [];
    for (const row of hung.rows) {
      for (const cell of row) this.cells.push(this.buildCell(cell, failed));
    }
  }

  buildCell(cell, failed) {
    const container = document.createElement("div");
    container.className = "mv-cell";
    Object.assign(container.dataset, { cell: cell.key, slot: cell.slot, role: cell.role, inner: cell.inner });
    const label = document.createElement("div");
    label.className = "mv-label";
    label.textContent = cell.label;
    const entry = { cell, container, image: null, flips: null, element: null, heatmap: null, marks: null, readout: null };
    if (!cell.image || failed.has(cell.image.id)) {
      const missing = document.createElement("p");
      missing.className = "mv-missing";
      missing.textContent = cell.image ? `${cell.slot}: the image could not be loaded (${failed.get(cell.image.id)}).` : cell.missing;
      container.classList.add("mv-empty");
      container.append(missing, label);
      this.grid.append(container);
      return entry;
    }
    const image = cell.image;
    const flips = displayFlips(image, cell.inner, measuredChestWall(image));
    Object.assign(container.dataset, {
      image: String(image.id),
      flipHorizontal: String(flips.horizontal),
      flipVertical: String(flips.vertical),
      flipSource: flips.source,
    });
    container.tabIndex = 0;
    container.setAttribute("aria-label", `${cell.label}. ${image.rows} × ${image.columns} pixels.`);
    const element = document.createElement("div");
    element.className = "mv-viewport";
    const marks = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    marks.classList.add("mv-marks");
    container.append(element);
    let heatmap = null;
    if (this.ai.available && image.overlayUrl) {
      heatmap = document.createElement("img");
      heatmap.className = "mv-heatmap";
      heatmap.alt = "";
      heatmap.addEventListener("load", () => this.drawOverlays());
      container.append(heatmap);
    }
    // Window and zoom of this view as they are now, in the image's own units (zoom: 100 % = one image pixel per
    // screen pixel), kept up to date by drawOverlays.
    const readout = document.createElement("div");
    readout.className = "mv-readout";
    readout.setAttribute("aria-live", "off");
    container.append(marks, label, readout);
    this.grid.append(container);
    Object.assign(entry, { image, flips, element, heatmap, marks, readout });
    return entry;
  }

  // ----------------------------------------------------------------------------------------------- overlays

  drawOverlays() {
    for (const entry of this.cells) {
      const view = this.stage.views.find((v) => v.element === entry.element);
      if (!view) continue;
      const box = drawnBox(view.viewport, entry.image);
      entry.container.dataset.box = [box.left, box.top, box.width, box.height].map((v) => v.toFixed(1)).join(",");
      entry.container.dataset.zoom = view.state.zoom.toFixed(4);
      if (view.frame) {
        const { left, top, width, height } = view.frame; // what zoom 1 fits to the cell (stage.js), image pixels
        entry.container.dataset.frame = [left, top, width, height].map((v) => v.toFixed(1)).join(",");
      }
      if (entry.heatmap) {
        if (this.ai.on && !entry.heatmap.getAttribute("src")) entry.heatmap.src = entry.image.overlayUrl;
        placeHeatmap(entry.heatmap, view.viewport, entry.image);
      }
      const cursor = this.cursor && this.cursor.container === entry.container ? this.cursor : null;
      drawMarks(entry.marks, view.viewport, this.marks.marksOn(entry.image), cursor);
      const ruler = this.rulers.get(entry.image.id);
      if (ruler) drawRuler(entry.marks, view.viewport, ruler);
      this.showReadout(entry, box);
    }
  }

  showReadout(entry, box) {
    const view = this.stage.views.find((v) => v.element === entry.element);
    const { windowWidth, windowCenter } = windowOf(view.viewport);
    const zoom = (100 * box.width * (window.devicePixelRatio || 1)) / entry.image.columns;
    const digits = (value) => Math.round(value).toLocaleString("en-GB");
    entry.readout.textContent = `W ${digits(windowWidth)}  L ${digits(windowCenter)}  ·  ${zoom < 10 ? zoom.toFixed(1) : Math.round(zoom)} %`;
    Object.assign(entry.readout.dataset, {
      windowWidth: windowWidth.toFixed(1),
      windowCenter: windowCenter.toFixed(1),
      zoomPercent: zoom.toFixed(2),
    });
  }

  measure(image, from, to, text) {
    this.rulers.set(image.id, { from, to, text });
    this.drawOverlays();
  }

  // ------------------------------------------------------------------------------------------------ toolbar

  updateToolbar() {
    const pressed = (selector, on) => {
      this.root.querySelectorAll(selector).forEach((b) => b.setAttribute("aria-pressed", String(on)));
    };
    this.root.querySelectorAll("[data-action^='layout:']").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.action === `layout:${this.layout}`));
    });
    this.root.querySelectorAll("[data-action^='mode:']").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.action === `mode:${this.stage.mode}`));
    });
    pressed("[data-action='compare']", this.compare);
    pressed("[data-action='sync']", this.stage.synchronised);
    pressed("[data-action='invert']", this.stage.inverted);
    pressed("[data-action='ai']", this.ai.on);
    this.root.dataset.layout = this.layout;
    this.root.dataset.mode = this.stage.mode;
    this.root.classList.toggle("mv-ai-on", this.ai.on);
    this.root.style.setProperty("--mv-ai-opacity", String(this.ai.opacity));
    const slider = this.root.querySelector("[data-control='opacity']");
    if (slider) slider.value = String(Math.round(this.ai.opacity * 100));
    document.querySelectorAll("[data-ai-panel]").forEach((panel) => {
      panel.hidden = !this.ai.on;
    });
    this.reportAiShown();
    const compare = this.root.querySelector("[data-action='compare']");
    if (compare && !this.prior) compare.title = "No earlier exam of this woman on the platform";
    this.fillPresets();
  }

  fillPresets() {
    const select = this.root.querySelector("[data-control='preset']");
    if (!select) return;
    const counts = this.current.images.map((image) => presetsFor(image).length);
    const labels = presetsFor(this.current.images[counts.indexOf(Math.max(...counts, 0))] || { voi: [] });
    const custom = this.stage.customWindow;
    const options = labels.map((preset, index) => new Option(preset.label, String(index), false, !custom && index === this.stage.presetIndex));
    // A window dragged by hand is none of the presets: the list says so rather than going blank.
    const dragged = new Option("Custom", "custom", false, custom);
    dragged.disabled = true;
    dragged.hidden = !custom;
    select.replaceChildren(...options, dragged);
    if (custom) select.value = "custom";
  }

  // ------------------------------------------------------------------------------------------------ actions

  async act(action, view = null) {
    const [verb, argument] = action.split(":");
    switch (verb) {
      case "layout":
        return this.hangLayout(argument);
      case "compare":
        if (!this.prior) return this.say("There is no earlier exam of this woman on the platform.");
        this.compare = !this.compare;
        return this.hangLayout();
      case "mode":
        this.mode = argument;
        this.stage.mode = argument;
        this.cursor = null;
        this.drawOverlays();
        return this.updateToolbar();
      case "ai":
        return this.toggleAi();
      case "opacity":
        this.ai.opacity = Math.min(1, Math.max(0, this.ai.opacity + (argument === "+" ? OPACITY_STEP : -OPACITY_STEP)));
        return this.updateToolbar();
      case "preset": {
        const select = this.root.querySelector("[data-control='preset']");
        const count = select ? [...select.options].filter((option) => option.value !== "custom").length || 1 : 1;
        this.stage.setPreset(argument === "next" ? (this.stage.presetIndex + 1) % count : Number(argument));
        return this.updateToolbar();
      }
      case "invert":
        this.stage.setInverted(!this.stage.inverted);
        return this.updateToolbar();
      case "reset":
        this.stage.inverted = false;
        this.stage.setPreset(0);
        this.stage.resetViews();
        this.rulers.clear();
        this.drawOverlays();
        return this.updateToolbar();
      case "fit":
        return this.stage.resetViews();
      case "one-to-one":
        return this.oneToOne(view);
      case "sync":
        this.stage.synchronised = !this.stage.synchronised;
        return this.updateToolbar();
      case "study":
        return this.goToStudy(argument);
      case "help":
        return this.toggleHelp();
      default:
        return undefined;
    }
  }

  // 1:1 about the centre of the focused view (or the first).
  oneToOne(view) {
    const target = view || this.stage.views[0];
    if (!target) return;
    const cell = this.stage.geometry(target);
    const centre = { x: cell.width / 2, y: cell.height / 2 };
    this.stage.setState(target, this.interaction.zoomState(target, centre, this.stage.oneToOneZoom(target)));
  }

  // The heatmaps and the per-breast AI panel are on screen: the read records (on the server, once) when its reader
  // first saw the AI, so that aided and unaided reads can be told apart (cases.reading.services.read_ai_reveal_record).
  reportAiShown() {
    if (!this.ai.on || !this.ai.revealUrl || this.ai.reported) return;
    this.ai.reported = true;
    fetch(this.ai.revealUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": this.config.csrfToken || "", Accept: "application/json" },
    })
      .then((response) => {
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        this.root.dataset.aiRevealRecorded = "true";
      })
      .catch(() => {
        this.ai.reported = false; // tried again the next time the AI is switched on
      });
  }

  toggleAi() {
    if (!this.ai.available) return this.say("No AI result is shown for this read.");
    if (this.ai.locked) return this.say(this.ai.lockedMessage || "The AI is shown after your first impression.");
    this.ai.on = !this.ai.on;
    this.updateToolbar();
    this.drawOverlays();
    return undefined;
  }

  goToStudy(direction) {
    const url = this.config.navigation && this.config.navigation[direction];
    if (!url) return this.say(direction === "next" ? "This is the last study." : "This is the first study.");
    const form = this.marks.form;
    if (form && form.dataset.dirty === "true" && !window.confirm("Leave this read? What you entered is not submitted.")) {
      return undefined;
    }
    window.location.assign(url);
    return undefined;
  }

  toggleHelp() {
    const dialog = this.root.querySelector("dialog.mv-help");
    if (!dialog) return;
    if (dialog.open) dialog.close();
    else dialog.showModal();
  }
}

// The grid takes the window's height below whatever the page shows above it (at most 40 % of the window), so the
// whole exam is on screen at any window size (the reading side panel uses the same measure).
function fitToWindow(root) {
  const grid = root.querySelector(".mv-grid");
  const top = grid.getBoundingClientRect().top + window.scrollY;
  const below = 30; // the message line under the grid
  document.documentElement.style.setProperty("--mv-offset", `${Math.round(Math.min(top, window.innerHeight * 0.4) + below)}px`);
}

function renderedOnce(elements) {
  return Promise.all(
    elements.map(
      (element) => new Promise((resolve) => element.addEventListener(Enums.Events.IMAGE_RENDERED, resolve, { once: true })),
    ),
  );
}

// Milliseconds since the navigation started (performance.now()'s origin) at each step, for the speed figures.
const steps = {};
const step = (name) => {
  steps[name] = Math.round(performance.now());
};

async function boot(root) {
  step("script");
  const config = JSON.parse(document.getElementById(root.dataset.config).textContent);
  registerPixelSource(config.studies.flatMap((study) => study.images));
  const { cpu } = await startCornerstone(config.rendering || "auto");
  root.dataset.renderer = cpu ? "cpu" : "gpu";
  step("cornerstone");
  fitToWindow(root);
  window.addEventListener("resize", () => fitToWindow(root));
  const viewer = new Viewer(root, config);
  viewer.interaction = installInteraction(viewer);
  const help = root.querySelector("dialog.mv-help table");
  if (help) fillHelp(help);
  const form = viewer.marks.form;
  if (form) form.addEventListener("input", () => (form.dataset.dirty = "true"));
  await viewer.hangLayout();
  step("hung");
  await renderedOnce(viewer.stage.views.map((view) => view.element));
  step("drawn");
  root.dataset.firstDrawMs = String(steps.drawn); // what the reader waited, from the navigation on
  root.dataset.steps = JSON.stringify({ ...steps, images: timings });
  root.dataset.pixelBytes = String(transferredBytes(viewer.stage.views.map((view) => view.image)));
  root.dataset.state = "ready";
  if (viewer.prior) preload(viewer.prior.images).catch(() => {}); // so that comparing is instant later
  new ResizeObserver(() => requestAnimationFrame(() => viewer.stage.resize())).observe(viewer.grid);
}

const root = document.querySelector("[data-mammo-viewer]");
if (root) {
  boot(root).catch((error) => {
    root.dataset.state = "failed";
    const message = root.querySelector(".mv-message");
    if (message) message.textContent = `The viewer could not start: ${error.message || error}`;
    throw error;
  });
}
