// The parts of Cornerstone3D's core the mammography viewer uses (mammo_platform/static/viewer/). esbuild bundles
// only what is exported here (and what it imports). @cornerstonejs/tools is deliberately not bundled: see ../README.md.
export {
  Enums,
  RenderingEngine,
  cache,
  getRenderingCapabilities,
  getRenderingEngine,
  imageLoader,
  init,
  metaData,
  utilities,
  version,
} from "@cornerstonejs/core";
