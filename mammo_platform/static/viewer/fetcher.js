// Pixel downloads through pixel-worker.js. Loaded by its own <script type="module"> before main.js, so that the
// current exam's pixels start to download as soon as the page is parsed, while the browser is still compiling
// Cornerstone3D; main.js imports this same module instance (one per page) and collects the results. No globals.

let worker = null;
let nextId = 1;
const waiting = new Map(); // request id -> { resolve, reject }
const started = new Map(); // absolute URL -> Promise of { unpacked, chestWall, breast, bytes }

function workerInstance() {
  if (!worker) {
    worker = new Worker(new URL("./pixel-worker.js", import.meta.url), { type: "module", name: "mammo-pixels" });
    worker.addEventListener("message", (event) => {
      const { id, ok, message, ...result } = event.data;
      const request = waiting.get(id);
      waiting.delete(id);
      if (!request) return;
      if (ok) request.resolve(result);
      else request.reject(new Error(`The image could not be loaded (${message}).`));
    });
  }
  return worker;
}

// The downloaded, unpacked viewer pixels at `url` (each URL is downloaded once per page).
export function fetchPixels(url, { monochrome1 = false } = {}) {
  const key = new URL(url, window.location.href).href;
  if (!started.has(key)) {
    const id = nextId++;
    const promise = new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
    workerInstance().postMessage({ id, url: key, monochrome1 });
    started.set(key, promise);
    promise.catch(() => started.delete(key)); // a failed download may be tried again
  }
  return started.get(key);
}

function prefetchCurrentExam() {
  const root = document.querySelector("[data-mammo-viewer]");
  const data = root && document.getElementById(root.dataset.config);
  if (!data) return;
  let config;
  try {
    config = JSON.parse(data.textContent);
  } catch {
    return; // main.js reports a broken configuration
  }
  const current = (config.studies || []).find((study) => study.role === "current");
  for (const image of current ? current.images : []) {
    if (image.pixelsUrl) fetchPixels(image.pixelsUrl, { monochrome1: image.photometric === "MONOCHROME1" }).catch(() => {});
  }
}

prefetchCurrentExam();
