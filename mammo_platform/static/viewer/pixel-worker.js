// A worker that downloads and unpacks viewer pixels off the page's main thread: while the page compiles
// Cornerstone3D or draws, the bytes keep flowing and the row sums run on another core. It answers with the pixels
// (transferred, not copied), the chest-wall side and the breast (its values' window, its box: breast.js) measured
// on them, and the bytes that crossed the network.

import { measureBreast } from "./breast.js";
import { measureChestWall } from "./hanging.js";
import { unpackViewerPixels } from "./mvp.js";

self.addEventListener("message", async (event) => {
  const { id, url, monochrome1 } = event.data;
  try {
    const started = performance.now();
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const buffer = await response.arrayBuffer();
    const downloaded = performance.now();
    const unpacked = unpackViewerPixels(buffer);
    const chestWall = measureChestWall(unpacked.pixels, unpacked.rows, unpacked.columns, { monochrome1 });
    const breast = measureBreast(unpacked.pixels, unpacked.rows, unpacked.columns, { monochrome1 });
    const timing = performance.getEntriesByName(response.url).pop();
    const bytes = timing ? timing.encodedBodySize || timing.transferSize : 0;
    const ms = { download: Math.round(downloaded - started), unpack: Math.round(performance.now() - downloaded) };
    self.postMessage({ id, ok: true, unpacked, chestWall, breast, bytes, ms }, [unpacked.pixels.buffer]);
  } catch (error) {
    self.postMessage({ id, ok: false, message: error.message || String(error) });
  }
});
