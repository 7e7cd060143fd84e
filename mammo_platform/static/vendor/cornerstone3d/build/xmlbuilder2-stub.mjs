// vtk.js imports xmlbuilder2 for its VTK XML (mesh) reader, which Cornerstone3D's Mesh class pulls in. The viewer
// never loads meshes, and xmlbuilder2 needs Node's "url" and "events" modules, so the build replaces it with this.
function unavailable() {
  throw new Error("VTK XML (mesh) reading is not included in this build of Cornerstone3D");
}
export const create = unavailable;
export const fragment = unavailable;
export const convert = unavailable;
export default { create: unavailable, fragment: unavailable, convert: unavailable };
