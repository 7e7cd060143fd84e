// Keyboard shortcuts: one table, used both to dispatch key presses and to write the help overlay, so the two cannot
// disagree. An action is a string main.js understands ("layout:four", "mode:wl", ...).

import { LAYOUTS } from "./hanging.js";

export const SHORTCUTS = [
  ...Object.entries(LAYOUTS).map(([name, layout]) => ({ keys: [layout.key], action: `layout:${name}`, help: `Layout: ${layout.label}` })),
  { keys: ["c"], action: "compare", help: "Hang the most recent prior exam beside the current one (on/off)" },
  { keys: ["a"], action: "ai", help: "AI heatmaps and results (on/off)" },
  { keys: ["["], action: "opacity:-", help: "Heatmap opacity down" },
  { keys: ["]"], action: "opacity:+", help: "Heatmap opacity up" },
  { keys: ["w"], action: "mode:wl", help: "Mouse: drag to change window/level" },
  { keys: ["p"], action: "mode:pan", help: "Mouse: drag to pan (the middle button always pans)" },
  { keys: ["z"], action: "mode:zoom", help: "Mouse: drag up/down to zoom (the right button and the wheel always zoom)" },
  { keys: ["g"], action: "mode:magnify", help: "Mouse: magnifying glass (original pixels 1:1 under the cursor)" },
  { keys: ["m"], action: "mode:mark", help: "Mouse: click to place the breast's suspicious-location mark" },
  { keys: ["d"], action: "mode:measure", help: "Mouse: drag to measure a distance (mm when the image gives its pixel spacing, else pixels)" },
  { keys: ["v"], action: "preset:next", help: "Next window preset (the DICOM's windows, the breast tissue's, the full range)" },
  { keys: ["i"], action: "invert", help: "Invert greyscale" },
  { keys: ["r"], action: "reset", help: "Reset window, invert, zoom and pan; remove the rulers" },
  { keys: ["f"], action: "fit", help: "Fit to screen" },
  { keys: ["o"], action: "one-to-one", help: "Zoom to 1:1 (one image pixel per screen pixel)" },
  { keys: ["s"], action: "sync", help: "Synchronised zoom and pan across the views (on/off)" },
  { keys: ["n", "PageDown"], action: "study:next", help: "Next study" },
  { keys: ["b", "PageUp"], action: "study:previous", help: "Previous study" },
  { keys: ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"], action: "cursor", help: "In a focused view with the mark tool: move the marking cursor (Shift: finer)" },
  { keys: ["Enter"], action: "mark:place", help: "In a focused view with the mark tool: place the mark at the cursor" },
  { keys: ["Delete"], action: "mark:clear", help: "In a focused view: clear that breast's mark" },
  { keys: ["Tab"], action: "", help: "Move the focus from view to view" },
  { keys: ["?", "h"], action: "help", help: "Show or hide this help" },
];

const KEY_NAMES = { ArrowLeft: "←", ArrowRight: "→", ArrowUp: "↑", ArrowDown: "↓", PageDown: "Page Down", PageUp: "Page Up" };

export function actionFor(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const shortcut = SHORTCUTS.find((entry) => entry.action && entry.keys.includes(key));
  return shortcut ? shortcut.action : null;
}

const CONTROL_INPUTS = new Set(["range", "radio", "checkbox", "button", "submit", "reset"]);
const CONTROL_KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Enter", " ", "Home", "End"]);

// Typing into the form must never trigger a shortcut; on a slider, radio button or checkbox only the keys that
// operate it are its own.
export function isTyping(target, key = "") {
  if (!target || !target.closest) return false;
  if (target.closest("textarea, select, [contenteditable]")) return true;
  const input = target.closest("input");
  if (!input) return false;
  return !CONTROL_INPUTS.has(input.type) || CONTROL_KEYS.has(key);
}

// Fill the help dialog's table from SHORTCUTS (text nodes only).
export function fillHelp(table) {
  const body = document.createElement("tbody");
  for (const shortcut of SHORTCUTS) {
    const row = document.createElement("tr");
    const keys = document.createElement("td");
    shortcut.keys.forEach((key, index) => {
      if (index) keys.append(" ");
      const kbd = document.createElement("kbd");
      kbd.textContent = KEY_NAMES[key] || (key.length === 1 ? key.toUpperCase() : key);
      keys.append(kbd);
    });
    const help = document.createElement("td");
    help.textContent = shortcut.help;
    row.append(keys, help);
    body.append(row);
  }
  table.replaceChildren(body);
}
